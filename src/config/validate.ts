// Validation in two passes, collecting every error before answering:
//  1. the schema (types, unknown keys, formats), errors reworded for people;
//  2. the semantic pass: references between blocks, duplicates, addresses.
// Defaults are read from the schema, never restated here. Whatever the input, the answer is a list
// of errors: an exception while checking becomes one too.
import { accessSync, constants, statSync } from 'node:fs';
import type { z } from 'zod';
import { authProblems } from '../auth/validate.ts';
import { openGeoDb } from '../geo/geoip.ts';
import { placeholderProblem } from '../pipeline/template.ts';
import { type ConfigError, type Loaded, loadFile, loadText, type SourceMap } from './load.ts';
import {
  ACCESS_LOG_FIELDS,
  accessLogSchema,
  adminSchema,
  type Config,
  configSchema,
  outlierDetectionSchema,
  retrySchema,
  upstreamSchema,
} from './schema.ts';
import { formatDuration, isLoopbackHost, parseAddress, userRegexProblem } from './units.ts';

export interface Validated {
  config?: Config;
  errors: ConfigError[];
  file: string;
}

export async function validateFile(file: string, env?: NodeJS.ProcessEnv): Promise<Validated> {
  try {
    return validateLoaded(await loadFile(file, env));
  } catch (e) {
    return failed(file, e);
  }
}

export function validateText(text: string, file = 'config.yaml', env?: NodeJS.ProcessEnv): Validated {
  try {
    return validateLoaded(loadText(text, file, env));
  } catch (e) {
    return failed(file, e);
  }
}

export function validateLoaded(loaded: Loaded): Validated {
  try {
    return check(loaded);
  } catch (e) {
    return failed(loaded.source.file, e);
  }
}

/** An exception while checking, as an error like any other (no stack trace reaches the user). */
function failed(file: string, e: unknown): Validated {
  const reason = `cannot check this file: ${e instanceof Error ? e.message : String(e)}`;
  return { errors: [{ file, line: 1, column: 1, key: '', reason }], file };
}

function check(loaded: Loaded): Validated {
  const { source } = loaded;
  if (loaded.errors.length > 0 && loaded.value === undefined)
    return { errors: loaded.errors, file: source.file };
  const errors = [...loaded.errors];
  const err = (path: readonly PropertyKey[], reason: string) => {
    const { line, column } = source.locate(path);
    errors.push({ file: source.file, line, column, key: path.join('.'), reason });
  };

  if (loaded.value === null || typeof loaded.value !== 'object' || Array.isArray(loaded.value)) {
    err([], 'expected a mapping of keys (listeners, routes, upstreams, ...)');
    return { errors, file: source.file };
  }

  const parsed = configSchema.safeParse(loaded.value);
  if (!parsed.success) for (const issue of parsed.error.issues) schemaIssue(issue, loaded.value, err);
  semantic(loaded.value, err);
  if (errors.length > 0 || !parsed.success) return { errors: sortErrors(errors), file: source.file };
  return { config: parsed.data, errors, file: source.file };
}

function sortErrors(errors: ConfigError[]): ConfigError[] {
  return errors.sort((a, b) => a.line - b.line || a.column - b.column);
}

type Err = (path: readonly PropertyKey[], reason: string) => void;

// ---------------------------------------------------------------- schema issues, in plain words
function schemaIssue(issue: z.core.$ZodIssue, root: unknown, err: Err): void {
  const path = issue.path;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = keysAt(path);
      for (const key of issue.keys) {
        const hint = closest(key, allowed);
        err([...path, key], `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
      return;
    }
    case 'invalid_type': {
      const got = valueAt(root, path);
      if (got === undefined) err(path, 'is required');
      else if (issue.message.startsWith('Invalid input'))
        err(path, `expected ${article(issue.expected)}, got ${describe(got)}`);
      else err(path, issue.message);
      return;
    }
    case 'invalid_value':
      err(path, `expected one of ${issue.values.map(String).join(', ')}`);
      return;
    case 'too_small':
      if (issue.origin === 'array')
        err(
          path,
          issue.message.startsWith('Too small') ? `needs at least ${issue.minimum} item(s)` : issue.message,
        );
      else
        err(
          path,
          issue.message.startsWith('Too small') ? `must be at least ${issue.minimum}` : issue.message,
        );
      return;
    case 'too_big':
      err(path, `must be at most ${issue.maximum}`);
      return;
    case 'invalid_union':
      err(path, 'expected a string or a list of strings');
      return;
    case 'invalid_format':
      err(path, issue.message.startsWith('Invalid') ? `invalid format (${issue.format})` : issue.message);
      return;
    default:
      err(path, issue.message);
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describe(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string "${v.length > 30 ? `${v.slice(0, 30)}...` : v}"`;
  return `${typeof v} ${String(v)}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** The keys the schema allows at `path`, for "did you mean" hints. */
function keysAt(path: readonly PropertyKey[]): string[] {
  // biome-ignore lint/suspicious/noExplicitAny: walking zod's internal definition tree
  let s: any = configSchema;
  const unwrap = () => {
    for (;;) {
      const def = s?._zod?.def;
      if (!def) return;
      if (
        def.type === 'optional' ||
        def.type === 'default' ||
        def.type === 'prefault' ||
        def.type === 'nullable'
      )
        s = def.innerType;
      else if (def.type === 'pipe') s = def.in;
      else return;
    }
  };
  for (const seg of path) {
    unwrap();
    const def = s?._zod?.def;
    if (!def) return [];
    if (def.type === 'object') s = def.shape[seg as string];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return [];
  }
  unwrap();
  const def = s?._zod?.def;
  return def?.type === 'object' ? Object.keys(def.shape) : [];
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

// ---------------------------------------------------------------- semantic pass
const HOST_RE = /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i;

// The semantic pass reads the raw value defensively, so it runs even when the schema pass found
// errors, and the user sees every problem in one go. Values of the wrong type are skipped here:
// the schema pass has already reported them.
type Raw = Record<string, unknown>;
/** `value` as `field` reads it (its default when absent), or undefined when invalid: the schema pass reports that. */
function read<T>(field: z.ZodType<T>, value: unknown): T | undefined {
  const r = field.safeParse(value);
  return r.success ? r.data : undefined;
}
const obj = (v: unknown): Raw => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strs = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : arr(v).filter((x): x is string => typeof x === 'string');

function semantic(raw: unknown, err: Err): void {
  const templateCheck = (v: unknown, path: PropertyKey[]) => {
    const t = str(v);
    const problem = t === undefined ? undefined : placeholderProblem(t);
    if (problem !== undefined) err(path, problem);
  };
  const pagesCheck = (v: unknown, path: PropertyKey[]) => {
    arr(v).forEach((pv, i) => {
      const file = str(obj(pv).file);
      if (file === undefined) return;
      try {
        accessSync(file, constants.R_OK);
      } catch (e) {
        err([...path, i, 'file'], `cannot read ${file} (${(e as NodeJS.ErrnoException).code})`);
      }
    });
  };
  const c = obj(raw);
  const log = obj(c.accessLog);
  const format = read(accessLogSchema.shape.format, log.format);
  if (log.fields !== undefined && format !== undefined && format !== 'json')
    err(['accessLog', 'fields'], 'used only by format: json');
  if (log.template !== undefined && format !== undefined && format !== 'template')
    err(['accessLog', 'template'], 'used only by format: template');
  const template = str(log.template);
  if (format === 'template' && template === undefined)
    err(['accessLog', 'template'], 'format: template needs a template');
  if (template !== undefined) {
    for (const m of template.matchAll(/\$([A-Za-z]+)/g))
      if (!(ACCESS_LOG_FIELDS as readonly string[]).includes(m[1]))
        err(['accessLog', 'template'], `unknown field $${m[1]}${hintFrom(m[1], ACCESS_LOG_FIELDS)}`);
  }
  const upstreams = obj(c.upstreams);
  const middlewares = obj(c.middlewares);
  rateLimitStoreCheck(c, err);
  const listenerNames = new Map<string, number>();
  const addresses = new Map<string, number>();
  arr(c.listeners).forEach((lv, i) => {
    const l = obj(lv);
    const name = str(l.name);
    if (name !== undefined) {
      if (listenerNames.has(name))
        err(
          ['listeners', i, 'name'],
          `duplicate listener name "${name}" (first at listeners.${listenerNames.get(name)})`,
        );
      else listenerNames.set(name, i);
    }
    const a = parseAddress(str(l.address) ?? '');
    if (a && a.port !== 0) {
      const k = `${a.host}:${a.port}`;
      if (addresses.has(k))
        err(['listeners', i, 'address'], `address already used by listeners.${addresses.get(k)}`);
      else addresses.set(k, i);
    }
    if (l.tls !== undefined && l.h2c === true)
      err(['listeners', i, 'h2c'], 'h2c is HTTP/2 without TLS; this listener has TLS');
    if (l.tls !== undefined && l.redirectToHttps !== undefined)
      err(['listeners', i, 'redirectToHttps'], 'this listener already speaks HTTPS');
  });

  if (c.admin !== undefined) {
    const admin = obj(c.admin);
    const a = parseAddress(read(adminSchema.shape.address, admin.address) ?? '');
    const token = str(admin.token);
    if (a && !isLoopbackHost(a.host) && !token) {
      err(
        ['admin', 'address'],
        'a non-loopback admin address needs admin.token (the API would be open to the network)',
      );
    } else if (!token) {
      err(
        ['admin'],
        `needs a token: every admin request must carry it (e.g. token: $${'{'}GATEHOUSE_ADMIN_TOKEN})`,
      );
    }
  }

  pagesCheck(c.errorPages, ['errorPages']);
  if (c.geoip !== undefined) {
    const db = str(obj(c.geoip).database);
    if (db !== undefined) {
      try {
        openGeoDb(db).close();
      } catch (e) {
        err(['geoip', 'database'], (e as Error).message.replace(/^geoip\.database: /, ''));
      }
    }
  }
  for (const [name, mv] of Object.entries(middlewares)) {
    const h = obj(obj(mv).headers);
    for (const dir of ['request', 'response'])
      for (const op of ['set', 'add'])
        for (const [k, v] of Object.entries(obj(obj(h[dir])[op])))
          templateCheck(v, ['middlewares', name, 'headers', dir, op, k]);
  }
  authChecks(middlewares, err);
  for (const [name, mv] of Object.entries(middlewares)) {
    const f = obj(mv).ipFilter;
    if (f === undefined) continue;
    if (strs(obj(f).allow).length === 0 && strs(obj(f).deny).length === 0)
      err(['middlewares', name, 'ipFilter'], 'needs allow or deny');
  }

  for (const [name, uv] of Object.entries(upstreams)) {
    const u = obj(uv);
    const lb = read(upstreamSchema.shape.loadBalancer, u.loadBalancer);
    if (u.hashKey !== undefined && lb !== undefined && lb !== 'consistentHash') {
      err(
        ['upstreams', name, 'hashKey'],
        `hashKey is used only by loadBalancer: consistentHash (this upstream uses ${lb})`,
      );
    }
    const seen = new Map<string, number>();
    arr(u.targets).forEach((tv, i) => {
      const text = str(obj(tv).url);
      if (text === undefined || !URL.canParse(text)) return;
      const url = new URL(text);
      const key = `${url.protocol}//${url.host}`;
      if ((url.pathname !== '/' && url.pathname !== '') || url.search)
        err(
          ['upstreams', name, 'targets', i, 'url'],
          'a target URL has no path or query (use rewrite on the route)',
        );
      if (seen.has(key))
        err(['upstreams', name, 'targets', i, 'url'], `duplicate target (same as targets.${seen.get(key)})`);
      else seen.set(key, i);
    });
    const utls = obj(u.tls);
    if ((utls.certFile === undefined) !== (utls.keyFile === undefined))
      err(['upstreams', name, 'tls'], 'certFile and keyFile go together');
    const targets = arr(u.targets);
    if (targets.length > 0 && targets.every((t) => obj(t).backup === true))
      err(['upstreams', name, 'targets'], 'every target is a backup: at least one must be a primary');
    const hc = obj(u.healthCheck);
    if (hc.type === 'tcp') {
      for (const k of ['method', 'path', 'headers', 'expectStatus', 'expectBody'])
        if (hc[k] !== undefined) err(['upstreams', name, 'healthCheck', k], 'used only by type: http');
    }
    const perTry = read(retrySchema.shape.perTryTimeout, obj(u.retry).perTryTimeout);
    const response = read(upstreamSchema.shape.timeouts, u.timeouts)?.response;
    if (perTry !== undefined && response !== undefined && perTry > response)
      err(
        ['upstreams', name, 'retry', 'perTryTimeout'],
        `longer than timeouts.response (${formatDuration(response)}), the deadline for all tries together`,
      );
    const od = obj(u.outlierDetection);
    const base = read(outlierDetectionSchema.shape.baseEjectionTime, od.baseEjectionTime);
    const max = read(outlierDetectionSchema.shape.maxEjectionTime, od.maxEjectionTime);
    if (base !== undefined && max !== undefined && base > max)
      err(['upstreams', name, 'outlierDetection', 'maxEjectionTime'], 'shorter than baseEjectionTime');
  }

  const routeNames = new Map<string, number>();
  arr(c.routes).forEach((rv, i) => {
    const r = obj(rv);
    const at = (...p: PropertyKey[]) => ['routes', i, ...p];
    const name = str(r.name);
    if (name !== undefined) {
      if (routeNames.has(name))
        err(at('name'), `duplicate route name "${name}" (first at routes.${routeNames.get(name)})`);
      else routeNames.set(name, i);
    }
    strs(r.listeners).forEach((l, j) => {
      if (!listenerNames.has(l))
        err(at('listeners', j), `no listener named "${l}"${hintFrom(l, listenerNames.keys())}`);
    });
    const up = str(r.upstream);
    const knownUpstream = (u: string | undefined, ...p: PropertyKey[]) => {
      if (u !== undefined && !Object.hasOwn(upstreams, u))
        err(at(...p), `no upstream named "${u}"${hintFrom(u, Object.keys(upstreams))}`);
    };
    knownUpstream(up, 'upstream');
    const kinds = BACKENDS.filter((k) => r[k] !== undefined);
    if (kinds.length === 0) err(at(), `a route needs one of ${BACKENDS.join(', ')} (where its requests go)`);
    else if (kinds.length > 1)
      err(at(kinds[1]), `a route has exactly one of ${BACKENDS.join(', ')}; this one also has ${kinds[0]}`);
    const sides = new Map<string, number>();
    arr(r.split).forEach((sv, j) => {
      const u = str(obj(sv).upstream);
      knownUpstream(u, 'split', j, 'upstream');
      if (u !== undefined) {
        if (sides.has(u)) err(at('split', j, 'upstream'), `${u} is already split.${sides.get(u)}`);
        else sides.set(u, j);
      }
    });
    if (Array.isArray(r.split) && r.split.length > 0 && r.split.every((x) => obj(x).weight === 0))
      err(at('split'), 'at least one side needs a weight above 0');
    if (r.sticky !== undefined && r.split === undefined) err(at('sticky'), 'sticky needs split');
    knownUpstream(str(obj(r.mirror).upstream), 'mirror', 'upstream');
    if (r.mirror !== undefined && kinds.length === 1 && kinds[0] !== 'upstream' && kinds[0] !== 'split')
      err(at('mirror'), `mirror copies proxied requests; this route is answered by ${kinds[0]}`);
    if (obj(r.match).geo !== undefined && c.geoip === undefined)
      err(at('match', 'geo'), 'the geo matcher needs geoip.database');
    const redirect = obj(r.redirect);
    templateCheck(redirect.to, at('redirect', 'to'));
    const respond = obj(r.respond);
    templateCheck(respond.body, at('respond', 'body'));
    for (const [k, v] of Object.entries(obj(respond.headers))) templateCheck(v, at('respond', 'headers', k));
    const root = str(obj(r.static).root);
    if (root !== undefined) {
      try {
        if (!statSync(root).isDirectory()) err(at('static', 'root'), `${root} is not a directory`);
      } catch (e) {
        err(at('static', 'root'), `cannot use ${root} (${(e as NodeJS.ErrnoException).code})`);
      }
    }
    pagesCheck(r.errorPages, at('errorPages'));
    strs(r.middlewares).forEach((m, j) => {
      if (!Object.hasOwn(middlewares, m))
        err(at('middlewares', j), `no middleware named "${m}"${hintFrom(m, Object.keys(middlewares))}`);
    });
    const m = obj(r.match);
    const pathKinds = [m.path, m.pathPrefix, m.pathRegex].filter((x) => x !== undefined).length;
    if (pathKinds > 1) err(at('match'), 'use one of path, pathPrefix and pathRegex');
    if (r.stripPrefix === true && m.pathPrefix === undefined)
      err(at('stripPrefix'), 'stripPrefix needs match.pathPrefix');
    const hosts = typeof m.hosts === 'string' ? [m.hosts] : arr(m.hosts);
    hosts.forEach((h, j) => {
      if (typeof h !== 'string') return;
      const p = typeof m.hosts === 'string' ? at('match', 'hosts') : at('match', 'hosts', j);
      if (h.includes(':')) err(p, 'a host has no port (the port is ignored when matching)');
      else if (!HOST_RE.test(h)) err(p, 'expected a host name such as api.example.com or *.example.com');
    });
  });
}

/** Where a route's requests go: exactly one per route. */
const BACKENDS = ['upstream', 'split', 'static', 'redirect', 'respond'] as const;

function hintFrom(word: string, names: Iterable<string>): string {
  const h = closest(word, [...names]);
  return h ? ` (did you mean "${h}"?)` : '';
}

/**
 * Why a user regex is refused, or undefined when it is accepted: it must compile for V8's
 * linear-time engine (the schema checks every user regex with this, and the router compiles them
 * the same way).
 */
export const regexProblem: (source: string) => string | undefined = userRegexProblem;

export type { ConfigError, SourceMap };

/** rateLimit store: redis needs the top-level redis block (its URL, timeout and key prefix). */
function rateLimitStoreCheck(c: Raw, err: Err): void {
  if (c.redis !== undefined) return;
  for (const [name, mv] of Object.entries(obj(c.middlewares))) {
    if (obj(obj(mv).rateLimit).store === 'redis')
      err(
        ['middlewares', name, 'rateLimit', 'store'],
        'store: redis needs the top-level redis block (redis: { url: "redis://127.0.0.1:6379" })',
      );
  }
}

/** The authentication middlewares (auth/validate.ts): htpasswd and key files, header names, keys. */
function authChecks(middlewares: Raw, err: Err): void {
  for (const p of authProblems(middlewares)) err(['middlewares', ...p.path], p.reason);
}
