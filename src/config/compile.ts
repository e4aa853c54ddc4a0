// Config → Plan: everything a request needs, built once and frozen. A Plan is swapped as one
// reference (hot reload): a request keeps the Plan it started with, and the old Plan is closed
// (pools, health checks, middleware timers) once its requests have finished.
import type { BlockList } from 'node:net';
import type { CacheRegistry } from '../cache/cache.ts';
import { type GeoDb, openGeoDb } from '../geo/geoip.ts';
import { createMiddleware } from '../middleware/index.ts';
import { blockListOf } from '../middleware/ipFilter.ts';
import type { Middleware } from '../middleware/types.ts';
import type { Stats } from '../observe/stats.ts';
import { compileRoute, type Route, type RouteBackend, tableFor, upstreamPath } from '../routing/table.ts';
import { compileStatic } from '../static/serve.ts';
import { compileErrorPages, type ErrorPages } from '../traffic/errorPages.ts';
import { redirectHandler, respondHandler } from '../traffic/local.ts';
import { Mirror, type MirrorRegistry } from '../traffic/mirror.ts';
import { Split } from '../traffic/split.ts';
import { tlsMaterial } from '../upstream/tlsMaterial.ts';
import { type TargetListener, Upstream } from '../upstream/upstream.ts';
import type { Config, LimitsConfig, RouteConfig } from './schema.ts';

export interface ListenerPlan {
  readonly name: string;
  readonly scheme: 'http' | 'https';
  readonly table: readonly Route[];
  /** Peers whose forwarding headers are believed; null: none. */
  readonly trusted: BlockList | null;
  /** redirectToHttps: the port to send clients to, or null. */
  readonly redirectPort?: number | null;
  /** The Strict-Transport-Security value, or null. */
  readonly hsts?: string | null;
  /** mTLS: the header names that carry the client certificate upstream, or null. */
  readonly clientCertHeaders?: { subject: string; fingerprint: string; verified: string } | null;
  /**
   * Listeners without client certificates: the certificate header names of every listener (and
   * the defaults) as [name, '', ...], removed from what clients send, so that an origin behind
   * several listeners cannot be told a certificate was verified by a request that had none.
   */
  readonly forgedCertHeaders?: readonly string[];
}

/** Requests running on a Plan; when a retired Plan's count reaches 0 it is closed. */
export interface PlanUsage {
  active: number;
  retired: boolean;
  onDrained: (() => void) | null;
}

export interface Plan {
  readonly config: Config;
  readonly usage: PlanUsage;
  readonly listeners: ReadonlyMap<string, ListenerPlan>;
  readonly routes: readonly Route[];
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly limits: LimitsConfig;
  /** Also send RFC 7239 Forwarded. */
  readonly forwarded: boolean;
  /** The geoip database (watched for changes while the Plan runs); null without one. */
  readonly geo: GeoDb | null;
  /** The top-level error pages, for answers before a route is known (404 route_not_found). */
  readonly errorPages: ErrorPages | null;
  /**
   * Starts background work (health checks), taking over target state from the Plan this one
   * replaces. Separate from compile so `explain` and `validate` start nothing.
   */
  start(onTarget: TargetListener, previous?: Plan): void;
  /** Stops background work; the Plan is retired and only finishes the requests it has. */
  stop(): void;
  close(): Promise<void>;
}

/** What outlives a reload in a running Gatehouse: the caches' contents and the mirrors' figures. */
export interface Shared {
  readonly caches: CacheRegistry;
  readonly mirrors: MirrorRegistry;
}

/**
 * `stats`: the running Gatehouse's figures, so each route holds its own slot; `shared`: its caches
 * and mirror logs, which outlive a reload (neither for explain/validate, which start nothing).
 */
export function compile(config: Config, stats: Stats | null = null, shared: Shared | null = null): Plan {
  const closers: (() => void)[] = [];
  const env = {
    onClose: (fn: () => void) => closers.push(fn),
    caches: shared?.caches ?? null,
    redis: config.redis,
  };

  const upstreams = new Map<string, Upstream>();
  for (const [name, u] of Object.entries(config.upstreams))
    upstreams.set(name, new Upstream(name, u, tlsMaterial(name, u)));

  const middlewares = new Map<string, Middleware>();
  for (const [name, m] of Object.entries(config.middlewares))
    middlewares.set(name, createMiddleware(name, m, env));

  let geo: GeoDb | null = null;
  if (config.geoip !== undefined) {
    geo = openGeoDb(config.geoip.database);
    // explain and validate only check that it opens.
    if (shared === null) {
      geo.close();
      geo = null;
    } else closers.push(() => geo?.close());
  }

  const pageFiles = new Map<string, string>();
  const globalPages = { cfg: config.errorPages, where: 'errorPages' };
  const errorPages = compileErrorPages([globalPages], pageFiles);
  const routes = config.routes.map((r, i) =>
    compileRoute(
      r,
      i,
      routeBackend(r, i, upstreams, shared, () =>
        r.errorPages === undefined
          ? errorPages
          : compileErrorPages(
              [{ cfg: r.errorPages, where: `routes.${i}.errorPages` }, globalPages],
              pageFiles,
            ),
      ),
      r.middlewares.map((m) => middlewares.get(m) as Middleware),
      config.limits.maxRequestBody,
      stats?.route(r.name) ?? null,
    ),
  );

  const globalTrusted = config.forwarding.trustedProxies;
  const certNames = new Set(['x-client-cert-subject', 'x-client-cert-sha256', 'x-client-cert-verified']);
  for (const l of config.listeners) {
    const h = l.tls?.clientAuth?.headers;
    if (h) for (const n of [h.subject, h.fingerprint, h.verified]) certNames.add(n.toLowerCase());
  }
  const forgedCertHeaders = Object.freeze([...certNames].flatMap((n) => [n, '']));
  const listeners = new Map<string, ListenerPlan>();
  for (const l of config.listeners) {
    const trusted = l.trustedProxies ?? globalTrusted;
    listeners.set(
      l.name,
      Object.freeze({
        name: l.name,
        scheme: l.tls ? ('https' as const) : ('http' as const),
        table: tableFor(l.name, routes),
        trusted: trusted.length > 0 ? blockListOf(trusted) : null,
        redirectPort: l.redirectToHttps?.port ?? null,
        hsts: l.tls?.hsts
          ? `max-age=${l.tls.hsts.maxAge}${l.tls.hsts.includeSubDomains ? '; includeSubDomains' : ''}${l.tls.hsts.preload ? '; preload' : ''}`
          : null,
        clientCertHeaders: l.tls?.clientAuth
          ? {
              subject: l.tls.clientAuth.headers.subject.toLowerCase(),
              fingerprint: l.tls.clientAuth.headers.fingerprint.toLowerCase(),
              verified: l.tls.clientAuth.headers.verified.toLowerCase(),
            }
          : null,
        forgedCertHeaders,
      }),
    );
  }

  let closed: Promise<void> | undefined;
  return Object.freeze({
    config,
    geo,
    errorPages,
    usage: { active: 0, retired: false, onDrained: null },
    listeners,
    routes,
    upstreams,
    limits: config.limits,
    forwarded: config.forwarding.forwarded,
    start(onTarget: TargetListener, previous?: Plan) {
      for (const u of upstreams.values()) {
        u.adopt(previous?.upstreams.get(u.name));
        u.start(onTarget);
      }
    },
    stop() {
      for (const u of upstreams.values()) u.stop();
    },
    close() {
      closed ??= (async () => {
        for (const fn of closers) fn();
        await Promise.all([...upstreams.values()].map((u) => u.close()));
      })();
      return closed;
    },
  });
}

/** A route's backend: its upstream, its split, or a local handler (static, redirect, respond). */
function routeBackend(
  r: RouteConfig,
  i: number,
  upstreams: ReadonlyMap<string, Upstream>,
  shared: Shared | null,
  pages: () => ErrorPages | null,
): RouteBackend {
  const b: RouteBackend = {
    upstream: null,
    split: null,
    local: null,
    mirror: null,
    errorPages: pages(),
    backend: '',
  };
  if (r.upstream !== undefined) {
    b.upstream = upstreams.get(r.upstream) as Upstream;
    b.backend = r.upstream;
  } else if (r.split !== undefined) {
    b.split = new Split(
      r.name,
      r.split.map((s) => ({ upstream: upstreams.get(s.upstream) as Upstream, weight: s.weight })),
      r.sticky,
    );
    b.backend = 'split';
  } else if (r.static !== undefined) {
    const h = compileStatic(r.static, `routes.${i}.static`);
    b.local = (rt, ctx) => h.serve(rt, ctx, upstreamPath(ctx.route as Route, ctx.path));
    b.backend = 'static';
  } else if (r.redirect !== undefined) {
    b.local = redirectHandler(r.redirect);
    b.backend = 'redirect';
  } else if (r.respond !== undefined) {
    b.local = respondHandler(r.respond);
    b.backend = 'respond';
  }
  if (r.mirror !== undefined)
    b.mirror = new Mirror(
      r.name,
      r.mirror,
      upstreams.get(r.mirror.upstream) as Upstream,
      shared?.mirrors ?? null,
    );
  return b;
}
