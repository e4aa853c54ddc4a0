// The admin listener: JSON API, Prometheus /metrics and the live dashboard. Loopback by default,
// and every request needs the admin token: `Authorization: Bearer <token>`, or for the dashboard in
// a browser a session cookie set by signing in with the token (HttpOnly, SameSite=Strict; a signed,
// expiring session id, never the token: see session.ts). `POST /logout` ends the session. Tokens
// are compared in constant time. Changes (draining a target) take the bearer header only, so a page
// elsewhere cannot make a browser do them.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { CacheRegistry, PurgeSelector } from '../cache/cache.ts';
import type { Plan } from '../config/compile.ts';
import type { Config } from '../config/schema.ts';
import { formatAddress, parseAddress } from '../config/units.ts';
import type { Limits } from '../limits/index.ts';
import type { Stats } from '../observe/stats.ts';
import type { Tracer } from '../observe/tracing.ts';
import { redactUrl } from '../state/redis.ts';
import type { MirrorRegistry } from '../traffic/mirror.ts';
import { wafEvents } from '../waf/events.ts';
import { metricsRegistry } from './metrics.ts';
import { cookieValues, SESSION_COOKIE, Sessions } from './session.ts';

export const VERSION: string = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
).version;

const DASHBOARD = new URL('../../assets/dashboard.html', import.meta.url);
/** Added to the dashboard's header bar. */
const SIGN_OUT =
  '<form method="post" action="/logout" style="margin:0"><button type="submit" style="font:inherit;' +
  'font-size:.85rem;color:inherit;background:none;border:1px solid #475569;border-radius:.3rem;' +
  'padding:.1rem .6rem;cursor:pointer">Sign out</button></form>';

export interface AdminContext {
  stats: Stats;
  tracer: Tracer | null;
  plan(): Plan;
  reloads(): { count: number; last: string | null };
  /** The `cache` middlewares' stores (purge, figures). */
  caches?: CacheRegistry;
  /** The mirrors' figures and differences. */
  mirrors?: MirrorRegistry;
  /** Connection caps, the per-client budget and the ban list (src/limits). */
  limits?: Limits;
}

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

export interface AdminOptions {
  /** How long a dashboard session lasts, in milliseconds (default 8 hours). */
  sessionLifetime?: number;
  /** The clock sessions are timed by, in milliseconds since the epoch (default Date.now). */
  now?: () => number;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function startAdmin(
  config: NonNullable<Config['admin']>,
  ctx: AdminContext,
  options: AdminOptions = {},
): Promise<AdminServer> {
  const token = config.token ?? '';
  const tokenDigest = digest(token);
  const sessions = new Sessions(options.sessionLifetime, options.now);
  const registry = metricsRegistry(
    ctx.stats,
    ctx.plan,
    ctx.tracer,
    VERSION,
    ctx.caches ?? null,
    ctx.mirrors ?? null,
    ctx.limits ?? null,
  );
  const dashboard = readFileSync(DASHBOARD, 'utf8').replace('</header>', `${SIGN_OUT}</header>`);

  const bearer = (req: IncomingMessage): boolean => {
    const h = req.headers.authorization;
    if (h === undefined || !/^Bearer /i.test(h)) return false;
    return timingSafeEqual(digest(h.slice(7).trim()), tokenDigest);
  };
  const cookie = (req: IncomingMessage): boolean =>
    cookieValues(req.headers.cookie, SESSION_COOKIE).some((v) => sessions.check(v) !== null);
  // HttpOnly: scripts cannot read it; SameSite=Strict: other sites' pages cannot send it; Secure
  // when the request came over TLS.
  const setCookie = (req: IncomingMessage, value: string, maxAge: number): string =>
    `${SESSION_COOKIE}=${value}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict; Path=/` +
    ('encrypted' in req.socket && req.socket.encrypted === true ? '; Secure' : '');

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/login' && method === 'POST') {
      const body = new URLSearchParams(await readBody(req, 4096));
      if (timingSafeEqual(digest(body.get('token') ?? ''), tokenDigest)) {
        res.writeHead(303, {
          location: '/',
          'set-cookie': setCookie(req, sessions.issue(), Math.floor(sessions.lifetime / 1000)),
          'cache-control': 'no-store',
        });
        res.end();
      } else loginPage(res, 'That token is not right.');
      return;
    }
    if (path === '/logout' && method === 'POST') {
      for (const v of cookieValues(req.headers.cookie, SESSION_COOKIE)) sessions.revoke(v);
      res.writeHead(303, {
        location: '/',
        'set-cookie': setCookie(req, '', 0),
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    const viaBearer = bearer(req);
    if (!viaBearer && !cookie(req)) {
      if (method === 'GET' && path === '/' && (req.headers.accept ?? '').includes('text/html'))
        return loginPage(res);
      return json(
        res,
        401,
        { error: 'unauthorized', message: 'send Authorization: Bearer <admin token>' },
        {
          'www-authenticate': 'Bearer realm="gatehouse admin"',
        },
      );
    }
    if (method === 'GET' && path === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy':
          "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      });
      res.end(dashboard);
      return;
    }
    if (method === 'GET' && path === '/metrics') {
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(text);
      return;
    }
    const plan = ctx.plan();
    if (method === 'GET') {
      switch (path) {
        case '/api/v1/status':
          return json(res, 200, status(ctx));
        case '/api/v1/config':
          return json(res, 200, redact(plan.config));
        case '/api/v1/listeners':
          return json(res, 200, listeners(ctx));
        case '/api/v1/routes':
          return json(res, 200, routes(ctx));
        case '/api/v1/upstreams':
          return json(res, 200, upstreams(ctx));
        case '/api/v1/errors':
          return json(res, 200, [...ctx.stats.recentErrors].reverse());
        case '/api/v1/stats':
          return json(res, 200, {
            status: status(ctx),
            listeners: listeners(ctx),
            routes: routes(ctx),
            upstreams: upstreams(ctx),
            errors: [...ctx.stats.recentErrors].reverse(),
            caches: cacheFigures(ctx.caches),
            mirrors: ctx.mirrors?.snapshot(20) ?? { routes: [], diffs: [] },
          });
      }
    }
    if (path === '/api/v1/bans' || path.startsWith('/api/v1/bans/')) {
      const bans = ctx.limits?.bans ?? null;
      if (bans === null)
        return json(res, 404, { error: 'not_found', message: 'bans are off (limits.ban is not configured)' });
      if (path === '/api/v1/bans') {
        if (method === 'GET') return json(res, 200, bans.list());
        if (method !== 'POST') return json(res, 405, { error: 'method_not_allowed' }, { allow: 'GET, POST' });
      } else if (method !== 'DELETE')
        return json(res, 405, { error: 'method_not_allowed' }, { allow: 'DELETE' });
      if (!viaBearer)
        return json(res, 403, { error: 'forbidden', message: 'changes need the Authorization header' });
      if (method === 'DELETE') {
        const ip = decodeURIComponent(path.slice('/api/v1/bans/'.length));
        return bans.lift(ip)
          ? json(res, 200, { address: ip, lifted: true })
          : json(res, 404, { error: 'not_found', message: 'that address is not banned' });
      }
      let body: { address?: unknown; seconds?: unknown };
      try {
        body = JSON.parse(await readBody(req, 4096));
      } catch {
        body = {};
      }
      const address = typeof body.address === 'string' ? body.address : '';
      const seconds = body.seconds === undefined ? undefined : Number(body.seconds);
      if (isIP(address) === 0 || (seconds !== undefined && !(seconds > 0)))
        return json(res, 400, {
          error: 'bad_request',
          message: 'expected {"address": "<IP>", "seconds": <number, optional>}',
        });
      const b = bans.ban(address, seconds === undefined ? undefined : seconds * 1000);
      return json(res, 200, b);
    }
    if (path === '/api/v1/waf') {
      if (method !== 'GET') return json(res, 405, { error: 'method_not_allowed' }, { allow: 'GET' });
      const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
      return json(res, 200, {
        counts: wafEvents.counts(),
        rules: wafEvents.ruleCounts(),
        recent: wafEvents.recent(limit),
      });
    }
    if (path === '/api/v1/mirror/diffs') {
      if (method !== 'GET') return json(res, 405, { error: 'method_not_allowed' }, { allow: 'GET' });
      const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
      return json(
        res,
        200,
        ctx.mirrors?.snapshot(limit, url.searchParams.get('route') ?? undefined) ?? { routes: [], diffs: [] },
      );
    }
    if (path === '/api/v1/cache') {
      if (method !== 'GET') return json(res, 405, { error: 'method_not_allowed' }, { allow: 'GET' });
      return json(res, 200, cacheFigures(ctx.caches));
    }
    if (path === '/api/v1/cache/purge') {
      if (method !== 'POST') return json(res, 405, { error: 'method_not_allowed' }, { allow: 'POST' });
      if (!viaBearer)
        return json(res, 403, { error: 'forbidden', message: 'changes need the Authorization header' });
      let sel: PurgeSelector | string;
      try {
        sel = purgeSelector(JSON.parse(await readBody(req, 16_384)));
      } catch {
        sel = 'expected a JSON body';
      }
      if (typeof sel === 'string')
        return json(res, 400, {
          error: 'bad_request',
          message: `${sel}: {"url": "https://host/path"}, {"prefix": "/path/" or "https://host/path"} or {"tag": "name"}, with an optional "cache": "<middleware name>"`,
        });
      const only = url.searchParams.get('cache') ?? sel.cache;
      const purged = ctx.caches?.purge(sel, only) ?? 0;
      return json(res, 200, { purged });
    }
    const split = /^\/api\/v1\/routes\/([^/]+)\/split$/.exec(path);
    if (split !== null) {
      const route = plan.routes.find((r) => r.name === decodeURIComponent(split[1]));
      if (route?.split == null)
        return json(res, 404, { error: 'not_found', message: 'no route with a split by that name' });
      if (method === 'GET') return json(res, 200, { route: route.name, sides: route.split.describe() });
      if (method !== 'PUT') return json(res, 405, { error: 'method_not_allowed' }, { allow: 'GET, PUT' });
      if (!viaBearer)
        return json(res, 403, { error: 'forbidden', message: 'changes need the Authorization header' });
      let weights: unknown;
      try {
        weights = (JSON.parse(await readBody(req, 16_384)) as { weights?: unknown }).weights;
      } catch {
        weights = undefined;
      }
      if (weights === null || typeof weights !== 'object' || Array.isArray(weights))
        return json(res, 400, {
          error: 'bad_request',
          message: 'expected {"weights": {"<upstream>": <number>, ...}}',
        });
      const problem = route.split.setWeights(weights as Record<string, number>);
      if (problem !== null) return json(res, 400, { error: 'bad_request', message: problem });
      return json(res, 200, { route: route.name, sides: route.split.describe() });
    }
    const drain = /^\/api\/v1\/upstreams\/([^/]+)\/drain$/.exec(path);
    if (drain !== null && method === 'POST') {
      if (!viaBearer)
        return json(res, 403, { error: 'forbidden', message: 'changes need the Authorization header' });
      const u = plan.upstreams.get(decodeURIComponent(drain[1]));
      const target = url.searchParams.get('target') ?? '';
      const on = url.searchParams.get('drain') !== 'false';
      if (u === undefined || !u.drain(target, on))
        return json(res, 404, { error: 'not_found', message: 'no such upstream or target' });
      return json(res, 200, { upstream: u.name, target, draining: on });
    }
    return json(res, 404, { error: 'not_found', message: `no ${method} ${path}` });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) json(res, 500, { error: 'internal' });
      else res.destroy();
    });
  });
  const { host, port } = parseAddress(config.address) as { host: string; port: number };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as { port: number };
  return {
    url: `http://${formatAddress(host, bound.port)}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function loginPage(res: ServerResponse, message = ''): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Gatehouse admin</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem;color:#1d2430}
input,button{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.3rem 0}p.err{color:#b91c1c}</style></head>
<body><h1>Gatehouse admin</h1><p>Sign in with the admin token (<code>admin.token</code> in the config).</p>
${message ? `<p class="err">${message}</p>` : ''}
<form method="post" action="/login"><input type="password" name="token" autocomplete="current-password" aria-label="Admin token" autofocus>
<button type="submit">Sign in</button></form></body></html>`;
  res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

/** The purge request's selector, or what is wrong with it. */
function purgeSelector(b: unknown): PurgeSelector | string {
  if (b === null || typeof b !== 'object') return 'expected a JSON object';
  const o = b as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => k !== 'cache');
  const cache = o.cache;
  if (cache !== undefined && typeof cache !== 'string') return 'cache: expected a middleware name';
  if (keys.length !== 1) return 'expected exactly one of url, prefix and tag';
  const k = keys[0];
  const v = o[k];
  if (typeof v !== 'string' || v === '') return `${k}: expected a non-empty string`;
  const only = cache === undefined ? {} : { cache };
  if (k === 'url')
    return /^https?:\/\//.test(v) ? { url: v, ...only } : 'url: expected an absolute http(s) URL';
  if (k === 'prefix') return { prefix: v, ...only };
  if (k === 'tag') return { tag: v, ...only };
  return `${k}: unknown (expected url, prefix or tag)`;
}

/** GET /api/v1/cache: each cache's figures. */
function cacheFigures(caches: CacheRegistry | undefined) {
  return [...(caches?.caches.values() ?? [])].map((c) => ({
    name: c.name,
    store: c.config.store,
    maxSize: c.store.maxSize,
    bytes: c.store.bytes,
    objects: c.store.objects,
    evictions: c.store.evictions,
    ...c.figures,
  }));
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  let s = '';
  for await (const c of req) {
    s += c;
    if (s.length > max) throw new Error('body too large');
  }
  return s;
}

const SECRET_KEY = /token|secret|password|authorization|api[-_]?key|cookie/i;

/**
 * The running config with secrets replaced: values under keys that name one (token, secret,
 * password, authorization, api key, cookie) and every header sent to the tracing collector.
 */
export function redact(value: unknown, path: readonly string[] = []): unknown {
  if (Array.isArray(value)) return value.map((v) => redact(v, path));
  if (value !== null && typeof value === 'object') {
    const all = path.length === 2 && path[0] === 'tracing' && path[1] === 'headers';
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const secret = all || SECRET_KEY.test(k);
      out[k] =
        secret && (typeof v === 'string' || typeof v === 'number') ? '[redacted]' : redact(v, [...path, k]);
    }
    return out;
  }
  // A password inside a URL (redis://:pw@host, https://user:pw@idp/...).
  if (typeof value === 'string' && value.includes('://') && value.includes('@')) return redactUrl(value);
  return value;
}

function status(ctx: AdminContext) {
  const reloads = ctx.reloads();
  return {
    version: VERSION,
    node: process.versions.node,
    pid: process.pid,
    startedAt: new Date(ctx.stats.started).toISOString(),
    uptimeSeconds: Math.round((Date.now() - ctx.stats.started) / 1000),
    reloads: reloads.count,
    lastReload: reloads.last,
    tracing: ctx.tracer === null ? null : { exported: ctx.tracer.exported, dropped: ctx.tracer.dropped },
  };
}

function listeners(ctx: AdminContext) {
  return ctx.plan().config.listeners.map((l) => {
    const s = ctx.stats.listeners.get(l.name);
    return { name: l.name, address: l.address, connections: s?.connections ?? 0, inflight: s?.inflight ?? 0 };
  });
}

function routes(ctx: AdminContext) {
  const now = performance.timeOrigin + performance.now();
  return ctx.plan().routes.map((r) => {
    const s = ctx.stats.routes.get(r.name);
    const w = s?.window.figures(now);
    return {
      name: r.name,
      upstream: r.backend,
      split: r.split?.describe() ?? null,
      match: r.config.match,
      requests: s?.total() ?? 0,
      lastMinute: w
        ? {
            rps: round(w.rps),
            requests: w.requests,
            errors: w.errors,
            errorRate: round(w.errorRate, 4),
            p50: w.p50,
            p95: w.p95,
            p99: w.p99,
          }
        : null,
      series: w?.series ?? [],
    };
  });
}

function upstreams(ctx: AdminContext) {
  const now = performance.timeOrigin + performance.now();
  return [...ctx.plan().upstreams.values()].map((u) => ({
    name: u.name,
    loadBalancer: u.settings.loadBalancer,
    retries: u.retries,
    retriesDenied: u.retriesDenied,
    ejections: u.ejectionsTotal,
    overflows: u.overflows,
    targets: u.targets.map((t) => {
      const w = ctx.stats.targets.get(`${u.name}|${t.id}`)?.window.figures(now);
      return {
        url: t.id,
        state: t.state,
        backup: t.backup,
        weight: t.weight,
        effectiveWeight: round(t.effectiveWeight()),
        inflight: t.active,
        ejections: t.outlier.ejectedTotal,
        lastMinute: w ? { requests: w.requests, errors: w.errors, p50: w.p50, p99: w.p99 } : null,
      };
    }),
  }));
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));
