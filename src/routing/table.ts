// The route table: compiled once per Plan and per listener, walked per request.
//
// Precedence (docs/routing.md). Routes are tried in this order, the first match wins:
//   1. higher `priority` first (default 0);
//   2. host: a route with an exact host before one with only `*.` wildcards (longer suffix first),
//      before one with no host condition (nginx picks the server block first, then the location);
//   3. path: exact `path`, then `pathRegex`, then `pathPrefix` with the longest prefix first
//      (nginx's location order); no path condition counts as the prefix "/";
//   4. more conditions first (each method list, header, query parameter and cookie counts one, a
//      geo condition one), so a
//      canary route with `headers: {x-canary: "1"}` beats the same route without it;
//   5. the order in the file.
// So the obvious cases need no thought (`/api/` beats `/`, `api.example.com` beats `*.example.com`),
// and `priority` settles anything else. `gatehouse explain` shows the order and why each route
// before the winner did not match.
import type { MatchConfig, RouteConfig } from '../config/schema.ts';
import { compileUserRegex } from '../config/units.ts';
import type { GeoInfo } from '../geo/geoip.ts';
import type { Middleware } from '../middleware/types.ts';
import type { RouteStats } from '../observe/stats.ts';
import { cookieValue } from '../pipeline/template.ts';
import type { ErrorPages } from '../traffic/errorPages.ts';
import type { LocalHandler } from '../traffic/local.ts';
import type { Mirror } from '../traffic/mirror.ts';
import type { Split } from '../traffic/split.ts';
import type { Upstream } from '../upstream/upstream.ts';

type PathKind = 'exact' | 'regex' | 'prefix';

export interface Route {
  readonly name: string;
  /** Position in the file, for explain and tie-breaking. */
  readonly index: number;
  readonly priority: number;
  readonly listeners: ReadonlySet<string> | null;
  readonly exactHosts: ReadonlySet<string> | null;
  /** `*.example.com` kept as `.example.com`. */
  readonly wildcardHosts: readonly string[] | null;
  /** TLS server names (SNI): exact names, and `*.` wildcards kept as `.example.com`. */
  readonly exactSni: ReadonlySet<string> | null;
  readonly wildcardSni: readonly string[] | null;
  readonly pathKind: PathKind;
  /** For prefixes: normalised without a trailing slash ('' for the root prefix). */
  readonly pathValue: string;
  readonly pathRegex: RegExp | null;
  readonly methods: ReadonlySet<string> | null;
  readonly headers: readonly (readonly [string, string])[] | null;
  readonly query: readonly (readonly [string, string])[] | null;
  readonly stripPrefix: boolean;
  /** Paths with %2F / %5C are forwarded as sent instead of refused. */
  readonly allowEncodedSlashes: boolean;
  readonly rewrite: { readonly regex: RegExp; readonly replacement: string } | null;
  readonly cookies: readonly (readonly [string, string])[] | null;
  readonly geo: {
    readonly countries: ReadonlySet<string> | null;
    readonly continents: ReadonlySet<string> | null;
  } | null;
  /** Where requests go: one of upstream, split and local is set (see RouteBackend). */
  readonly upstream: Upstream | null;
  readonly split: Split | null;
  readonly local: LocalHandler | null;
  readonly mirror: Mirror | null;
  readonly errorPages: ErrorPages | null;
  /** The backend's name in logs and figures: the upstream's, or `static`, `redirect`, `respond`. */
  readonly backend: string;
  readonly maxRequestBody: number;
  /**
   * Middlewares per stage, null when none has that hook. onRequest: those with onRequest or respond
   * (both run in the request stage). onResponse is already in reverse order.
   */
  readonly onRequest: readonly Middleware[] | null;
  readonly onUpstreamRequest: readonly Middleware[] | null;
  readonly onResponse: readonly Middleware[] | null;
  readonly config: RouteConfig;
  /** This route's figures (kept across reloads by name), resolved when the Plan is compiled; null without admin. */
  readonly stats: RouteStats | null;
}

/** What a route is matched against. */
export interface MatchInput {
  host: string;
  /** The TLS server name the client sent ('' without TLS or SNI). */
  sni: string;
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  /** The query string ('' or '?a=1'). */
  query: string;
  /** Parsed from `query` by the first route that has query conditions, then reused. */
  params: URLSearchParams | undefined;
  /** The client's geo data, looked up on first use (the geo matcher). */
  geo: () => GeoInfo | null;
}

/** What a route sends requests to, built by the Plan compiler. */
export interface RouteBackend {
  upstream: Upstream | null;
  split: Split | null;
  local: LocalHandler | null;
  mirror: Mirror | null;
  errorPages: ErrorPages | null;
  backend: string;
}

export function queryParams(input: MatchInput): URLSearchParams {
  input.params ??= new URLSearchParams(input.query);
  return input.params;
}

export type Mismatch = 'host' | 'sni' | 'path' | 'method' | 'headers' | 'query' | 'cookies' | 'geo';

export function compileRoute(
  cfg: RouteConfig,
  index: number,
  backend: RouteBackend,
  middlewares: readonly Middleware[],
  defaultMaxBody: number,
  stats: RouteStats | null = null,
): Route {
  const m: MatchConfig = cfg.match;
  const hosts = (m.hosts ?? []).map((h) => h.toLowerCase().replace(/\.$/, ''));
  const exact = hosts.filter((h) => !h.startsWith('*.'));
  const wild = hosts.filter((h) => h.startsWith('*.')).map((h) => h.slice(1));
  const snis = (m.sni ?? []).map((h) => h.toLowerCase().replace(/\.$/, ''));
  const exactSni = snis.filter((h) => !h.startsWith('*.'));
  const wildSni = snis.filter((h) => h.startsWith('*.')).map((h) => h.slice(1));
  let pathKind: PathKind = 'prefix';
  let pathValue = '';
  if (m.path !== undefined) {
    pathKind = 'exact';
    pathValue = m.path;
  } else if (m.pathRegex !== undefined) {
    pathKind = 'regex';
    pathValue = m.pathRegex;
  } else if (m.pathPrefix !== undefined) {
    pathValue = m.pathPrefix.replace(/\/+$/, '');
  }
  const pick = (hook: keyof Middleware) => {
    const list = middlewares.filter((mw) => typeof mw[hook] === 'function');
    return list.length > 0 ? list : null;
  };
  const onResponse = pick('onResponse');
  // The request stage runs onRequest and respond hooks, in route order.
  const requestStage = middlewares.filter((mw) => mw.onRequest !== undefined || mw.respond !== undefined);
  return Object.freeze({
    name: cfg.name,
    index,
    priority: cfg.priority,
    listeners: cfg.listeners ? new Set(cfg.listeners) : null,
    exactHosts: exact.length > 0 ? new Set(exact) : null,
    wildcardHosts: wild.length > 0 ? wild.sort((a, b) => b.length - a.length) : null,
    exactSni: exactSni.length > 0 ? new Set(exactSni) : null,
    wildcardSni: wildSni.length > 0 ? wildSni : null,
    pathKind,
    pathValue,
    pathRegex: pathKind === 'regex' ? userRegex(index, 'match.pathRegex', pathValue) : null,
    methods: m.methods ? new Set(m.methods) : null,
    headers: m.headers ? Object.entries(m.headers).map(([k, v]) => [k.toLowerCase(), v] as const) : null,
    query: m.query ? Object.entries(m.query) : null,
    stripPrefix: cfg.stripPrefix,
    allowEncodedSlashes: cfg.allowEncodedSlashes,
    rewrite: cfg.rewrite
      ? { regex: userRegex(index, 'rewrite.regex', cfg.rewrite.regex), replacement: cfg.rewrite.replacement }
      : null,
    cookies: m.cookies ? Object.entries(m.cookies) : null,
    geo: m.geo
      ? {
          countries: m.geo.countries ? new Set(m.geo.countries) : null,
          continents: m.geo.continents ? new Set(m.geo.continents) : null,
        }
      : null,
    upstream: backend.upstream,
    split: backend.split,
    local: backend.local,
    mirror: backend.mirror,
    errorPages: backend.errorPages,
    backend: backend.backend,
    maxRequestBody: cfg.maxRequestBody ?? defaultMaxBody,
    onRequest: requestStage.length > 0 ? requestStage : null,
    onUpstreamRequest: pick('onUpstreamRequest'),
    onResponse: onResponse ? onResponse.reverse() : null,
    config: cfg,
    stats,
  });
}

/**
 * User regexes run on V8's linear-time engine, compiled by the same function validation uses; one
 * the engine cannot run throws here (validate refuses it first), so none reaches a request.
 */
function userRegex(index: number, key: string, source: string): RegExp {
  try {
    return compileUserRegex(source);
  } catch (e) {
    throw new Error(`routes.${index}.${key}: ${(e as Error).message}`);
  }
}

function hostRank(r: Route): number {
  if (r.exactHosts) return 100_000;
  if (r.wildcardHosts) return 1 + r.wildcardHosts[r.wildcardHosts.length - 1].length;
  return 0;
}

function pathRank(r: Route): number {
  if (r.pathKind === 'exact') return 3_000_000;
  if (r.pathKind === 'regex') return 2_000_000;
  return 1 + r.pathValue.length;
}

function conditionCount(r: Route): number {
  return (
    (r.methods ? 1 : 0) +
    (r.exactSni || r.wildcardSni ? 1 : 0) +
    (r.headers?.length ?? 0) +
    (r.query?.length ?? 0) +
    (r.cookies?.length ?? 0) +
    (r.geo ? 1 : 0)
  );
}

/** The documented precedence order (see the comment at the top of this file). */
export function orderRoutes(routes: readonly Route[]): Route[] {
  return [...routes].sort(
    (a, b) =>
      b.priority - a.priority ||
      hostRank(b) - hostRank(a) ||
      pathRank(b) - pathRank(a) ||
      conditionCount(b) - conditionCount(a) ||
      a.index - b.index,
  );
}

/** The routes one listener serves, in precedence order. */
export function tableFor(listener: string, routes: readonly Route[]): readonly Route[] {
  return Object.freeze(orderRoutes(routes.filter((r) => r.listeners === null || r.listeners.has(listener))));
}

/** Why a route does not match, or null when it does. Cheapest checks first. */
export function mismatch(r: Route, input: MatchInput): Mismatch | null {
  if (r.methods !== null && !r.methods.has(input.method)) return 'method';
  if (r.exactHosts !== null || r.wildcardHosts !== null) {
    let ok = r.exactHosts?.has(input.host) ?? false;
    if (!ok && r.wildcardHosts !== null) {
      for (const suffix of r.wildcardHosts) {
        if (input.host.length > suffix.length && input.host.endsWith(suffix)) {
          ok = true;
          break;
        }
      }
    }
    if (!ok) return 'host';
  }
  if (r.exactSni !== null || r.wildcardSni !== null) {
    const sni = input.sni;
    let ok = r.exactSni?.has(sni) ?? false;
    if (!ok && r.wildcardSni !== null)
      ok = r.wildcardSni.some((suffix) => sni.length > suffix.length && sni.endsWith(suffix));
    if (!ok) return 'sni';
  }
  const path = input.path;
  switch (r.pathKind) {
    case 'exact':
      if (path !== r.pathValue) return 'path';
      break;
    case 'regex':
      if (!(r.pathRegex as RegExp).test(path)) return 'path';
      break;
    default: {
      const p = r.pathValue;
      if (p !== '' && !(path.startsWith(p) && (path.length === p.length || path.charCodeAt(p.length) === 47)))
        return 'path';
    }
  }
  if (r.headers !== null) {
    for (const [name, want] of r.headers) {
      const got = input.headers[name];
      if (got === undefined) return 'headers';
      if (want !== '*' && (Array.isArray(got) ? !got.includes(want) : got !== want)) return 'headers';
    }
  }
  if (r.query !== null) {
    const q = queryParams(input);
    for (const [name, want] of r.query) {
      const got = q.getAll(name);
      if (got.length === 0 || (want !== '*' && !got.includes(want))) return 'query';
    }
  }
  if (r.cookies !== null) {
    const header = input.headers.cookie;
    for (const [name, want] of r.cookies) {
      const got = cookieValue(header, name);
      if (got === undefined || (want !== '*' && got !== want)) return 'cookies';
    }
  }
  if (r.geo !== null) {
    const g = input.geo();
    const country = g?.country;
    const continent = g?.continent;
    const ok =
      (r.geo.countries !== null && country !== undefined && r.geo.countries.has(country)) ||
      (r.geo.continents !== null && continent !== undefined && r.geo.continents.has(continent));
    if (!ok) return 'geo';
  }
  return null;
}

export function matchRoute(table: readonly Route[], input: MatchInput): Route | undefined {
  for (let i = 0; i < table.length; i++) {
    if (mismatch(table[i], input) === null) return table[i];
  }
  return undefined;
}

/** The path sent upstream: stripPrefix, then rewrite; the query is appended by the caller. */
export function upstreamPath(r: Route, path: string): string {
  let p = path;
  if (r.stripPrefix && r.pathValue !== '') p = p.slice(r.pathValue.length) || '/';
  if (r.rewrite !== null) p = p.replace(r.rewrite.regex, r.rewrite.replacement);
  return p;
}
