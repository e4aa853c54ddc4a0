// The request path: one function for every request on every transport (docs/architecture.md).
//
//   accept → route → request → select → upstreamRequest → send → response → log
//
// HTTP/1.1, HTTP/2, h2c and upgrade requests all enter through handleRequest with a Responder for
// their transport. Everything up to `select` is the same code for all of them; after it an ordinary
// request is exchanged with the target (upstream/forward.ts) and an upgrade is spliced to it
// (upstream/tunnel.ts). Every error answer goes through one writer (respond.ts), and the `log`
// stage runs exactly once, when the responder closes.
import type { IncomingMessage } from 'node:http';
import { enterUpstream, noteOffence, refuseBanned, watchBodyRate } from '../limits/index.ts';
import type { LocalResponse, Middleware } from '../middleware/types.ts';
import { requestId } from '../observe/requestId.ts';
import { type MatchInput, matchRoute, upstreamPath } from '../routing/table.ts';
import { InterceptFilter } from '../traffic/errorPages.ts';
import type { Mirror } from '../traffic/mirror.ts';
import type { Split } from '../traffic/split.ts';
import { forward } from '../upstream/forward.ts';
import { splice } from '../upstream/tunnel.ts';
import { headerBytes, hostOnly, identifyClient, requestHost, splitTarget } from './accept.ts';
import { fail, respondLocal } from './answer.ts';
import { peekBody } from './body.ts';
import { RequestContext, type UpstreamRequest } from './context.ts';
import { ProxyError, type Reason } from './errors.ts';
import { upstreamHeaders, viaHasLoop } from './forwarding.ts';
import { hasEncodedSlash } from './path.ts';
import type { Responder } from './responder.ts';
import type { ListenerSlot, Runtime } from './runtime.ts';

/** What `OPTIONS *` answers: the methods the proxy forwards (RFC 9110 §9.3.7). */
const ALLOW = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS';

/**
 * Runs one request. `upgrade` is null for an ordinary request, or for an upgrade request (a
 * WebSocket handshake) the bytes the client sent after its head. `refuse`: the transport has
 * already found the request unacceptable (CONNECT, an unknown Expect); it is answered with that
 * reason, and logged and counted like any other.
 */
export function handleRequest(
  rt: Runtime,
  slot: ListenerSlot,
  req: IncomingMessage,
  res: Responder,
  upgrade: Buffer | null,
  refuse: Reason | null = null,
): void {
  const start = performance.now();
  const plan = rt.plan;
  const listener = slot.plan;
  const ctx = new RequestContext(
    requestId(req.headers['x-request-id']),
    plan,
    req,
    res,
    upgrade,
    listener.name,
    listener.scheme,
    start,
  );
  rt.inflight++;
  plan.usage.active++;
  if (slot.stats !== null) slot.stats.inflight++;
  if (rt.tracer !== null) ctx.trace = rt.tracer.begin(ctx);
  // 'close' comes exactly once, when the response is done or the connection is gone.
  res.onClose(() => finish(rt, slot, ctx));

  // ---- accept (request head)
  identifyClient(ctx, listener);
  if (refuseBanned(rt, ctx)) return;
  if (refuse !== null) return fail(rt, ctx, refuse, true);
  // An upgrade with a body would leave the target reading the client's next bytes as that body.
  if (
    upgrade !== null &&
    (req.headers['transfer-encoding'] !== undefined || hasLength(req.headers['content-length']))
  )
    return fail(rt, ctx, 'bad_request', true);
  const limits = plan.limits;
  const url = req.url ?? '/';
  if (url.length > limits.maxUriLength) return fail(rt, ctx, 'uri_too_long', true);
  if (headerBytes(req.rawHeaders) > limits.maxRequestHeaders) return fail(rt, ctx, 'headers_too_large', true);
  const host = requestHost(req, url);
  if (host === undefined) return fail(rt, ctx, 'bad_request', true);
  ctx.hostHeader = host;
  ctx.host = hostOnly(host);
  if (listener.hsts) res.setHeader('strict-transport-security', listener.hsts);
  const target = splitTarget(url);
  if (target === undefined) return fail(rt, ctx, 'bad_request', true);
  ctx.path = target.path;
  ctx.query = target.query;
  if (viaHasLoop(req.headers.via, rt.via)) return fail(rt, ctx, 'loop_detected', false);
  if (listener.redirectPort != null) return redirectToHttps(rt, ctx, listener.redirectPort, url);
  if (ctx.path === '*') return asterisk(rt, ctx);

  // ---- route
  const input: MatchInput = {
    host: ctx.host,
    sni: ctx.sni,
    path: ctx.path,
    method: req.method ?? 'GET',
    headers: req.headers,
    query: ctx.query,
    params: undefined,
    geo: () => ctx.geo(),
  };
  const route = matchRoute(listener.table, input);
  if (route === undefined) return fail(rt, ctx, 'route_not_found', false);
  ctx.route = route;
  if (route.pathRegex !== null) ctx.captures = route.pathRegex.exec(ctx.path);
  if (!route.allowEncodedSlashes && hasEncodedSlash(ctx.path)) return fail(rt, ctx, 'bad_request', false);

  const cl = req.headers['content-length'];
  if (cl !== undefined && Number(cl) > route.maxRequestBody) return fail(rt, ctx, 'body_too_large', true);

  // ---- request
  if (route.onRequest !== null) return requestStage(rt, ctx, route.onRequest, 0);
  proceed(rt, ctx);
}

/**
 * The request stage from hook `from` on: each middleware's onRequest (a LocalResponse answers at
 * once) and then its respond (a filter around the responder, or null: it has answered). Runs
 * synchronously until a hook returns a promise, and continues in continueAsync from there.
 */
function requestStage(rt: Runtime, ctx: RequestContext, hooks: readonly Middleware[], from: number): void {
  for (let i = from; i < hooks.length; i++) {
    const m = hooks[i];
    if (m.onRequest !== undefined) {
      let r: ReturnType<NonNullable<Middleware['onRequest']>>;
      try {
        r = m.onRequest(ctx);
      } catch {
        return fail(rt, ctx, 'internal', false);
      }
      if (r !== undefined && typeof (r as Promise<unknown>).then === 'function') {
        void continueAsync(rt, ctx, hooks, i, r as Promise<LocalResponse | undefined>, 'request');
        return;
      }
      if (r !== undefined) return respondLocal(rt, ctx, r as LocalResponse);
    }
    // Body filters see ordinary responses only: an upgrade's answer is a tunnel (upstream/tunnel.ts).
    if (m.respond !== undefined && ctx.upgrade === null) {
      let w: ReturnType<NonNullable<Middleware['respond']>>;
      try {
        w = m.respond(ctx, ctx.res);
      } catch {
        return fail(rt, ctx, 'internal', false);
      }
      if (w !== null && typeof (w as Promise<unknown>).then === 'function') {
        void continueAsync(rt, ctx, hooks, i, w as Promise<Responder | null>, 'respond');
        return;
      }
      if (w === null) return;
      ctx.res = w as Responder;
    }
  }
  proceed(rt, ctx);
}

/** An asynchronous hook: waits for it, then runs the rest of the request stage. */
async function continueAsync(
  rt: Runtime,
  ctx: RequestContext,
  hooks: readonly Middleware[],
  at: number,
  pending: Promise<LocalResponse | undefined> | Promise<Responder | null>,
  stage: 'request' | 'respond',
): Promise<void> {
  const next = at + 1;
  try {
    const r = await pending;
    if (stage === 'request') {
      if (r !== undefined) return respondLocal(rt, ctx, r as LocalResponse);
      // The same middleware's respond hook still runs.
      const m = hooks[at];
      if (m.respond !== undefined && ctx.upgrade === null) {
        if (ctx.res.destroyed) return;
        const w = await m.respond(ctx, ctx.res);
        if (w === null) return;
        ctx.res = w;
      }
    } else {
      if (r === null) return;
      ctx.res = r as Responder;
    }
  } catch {
    return fail(rt, ctx, 'internal', false);
  }
  if (ctx.res.destroyed) return;
  if (next < hooks.length) return requestStage(rt, ctx, hooks, next);
  proceed(rt, ctx);
}

function proceed(rt: Runtime, ctx: RequestContext): void {
  const route = ctx.route as NonNullable<RequestContext['route']>;
  const req = ctx.req;
  // ---- select: a route Gatehouse answers itself (static, redirect, respond), or an upstream: the
  // route's own, or a side of its split.
  if (route.local !== null) return route.local(rt, ctx);
  const upstream = route.upstream ?? (route.split as Split).pick(ctx);
  if (upstream === undefined) return fail(rt, ctx, 'no_healthy_target', ctx.upgrade !== null);
  ctx.upstream = upstream;
  const target = upstream.pick(ctx);
  if (target === undefined) return fail(rt, ctx, 'no_healthy_target', ctx.upgrade !== null);
  ctx.target = target;

  // ---- upstreamRequest
  const upstreamHost =
    upstream.settings.passHostHeader && ctx.hostHeader !== '' ? ctx.hostHeader : target.authority;
  const headers = upstreamHeaders(ctx, upstreamHost, rt.via, ctx.plan.forwarded);
  const ureq: UpstreamRequest = {
    method: req.method ?? 'GET',
    path: upstreamPath(route, ctx.path) + ctx.query,
    headers,
  };
  if (route.onUpstreamRequest !== null) {
    try {
      for (const m of route.onUpstreamRequest) m.onUpstreamRequest?.(ctx, ureq);
    } catch {
      return fail(rt, ctx, 'internal', ctx.upgrade !== null);
    }
  }

  // ---- send, response: an exchange, or for an upgrade a tunnel
  if (ctx.upgrade !== null) {
    if (!enterUpstream(rt, ctx)) return;
    return splice(rt, ctx, ureq);
  }
  if (route.errorPages?.intercepts) ctx.res = new InterceptFilter(ctx.res, route.errorPages, ctx);
  // limits.requestBuffer: a small body of known length is read whole first, so that a client
  // trickling it holds no upstream connection while it does.
  const buffer = ctx.plan.limits.requestBuffer;
  const cl = req.headers['content-length'];
  if (buffer > 0 && ctx.body === null && cl !== undefined && cl !== '0' && Number(cl) <= buffer)
    return buffered(rt, ctx, ureq, Number(cl));
  send(rt, ctx, ureq);
}

/** The `send` stage: to the route's mirror as well when it takes this request, then upstream. */
function send(rt: Runtime, ctx: RequestContext, ureq: UpstreamRequest): void {
  const mirror = (ctx.route as NonNullable<RequestContext['route']>).mirror;
  if (mirror?.wants(ctx)) return mirrored(rt, ctx, ureq, mirror);
  forward(rt, ctx, ureq);
}

/** Reads a body of `length` bytes before sending, under bodyTimeout and minRequestBodyRate. */
function buffered(rt: Runtime, ctx: RequestContext, ureq: UpstreamRequest, length: number): void {
  const req = ctx.req;
  const idle = ctx.plan.limits.bodyTimeout;
  if (idle > 0)
    req.setTimeout(idle, () => fail(rt, ctx, new ProxyError('request_timeout', 'request body idle'), true));
  watchBodyRate(rt, ctx);
  peekBody(ctx, length).then(
    () => {
      if (idle > 0) req.setTimeout(0);
      if (ctx.res.destroyed || ctx.res.headersSent) return;
      send(rt, ctx, ureq);
    },
    () => {
      if (idle > 0) req.setTimeout(0);
      if (!ctx.res.headersSent) fail(rt, ctx, new ProxyError('bad_request', 'request body incomplete'), true);
    },
  );
}

/**
 * A request that is also copied to the route's mirror: its body (at most mirror.maxBody, checked by
 * wants) is read whole first, so that both the client's upstream and the mirror get it.
 */
function mirrored(rt: Runtime, ctx: RequestContext, ureq: UpstreamRequest, mirror: Mirror): void {
  const cl = ctx.req.headers['content-length'];
  if (cl === undefined || cl === '0') {
    const f = mirror.start(ctx, ureq, ctx.body);
    if (f !== null) ctx.res = f;
    return forward(rt, ctx, ureq);
  }
  peekBody(ctx, Number(cl)).then(
    (body) => {
      if (ctx.res.destroyed) return;
      // A body another middleware read only the start of (the WAF's inspectBody) is not copied.
      if (ctx.bodyComplete) {
        const f = mirror.start(ctx, ureq, body);
        if (f !== null) ctx.res = f;
      } else mirror.skipped();
      forward(rt, ctx, ureq);
    },
    () => {
      if (!ctx.res.headersSent) fail(rt, ctx, new ProxyError('bad_request', 'request body incomplete'), true);
    },
  );
}

/** The `log` stage: exactly once per request, when the response is done or the client has gone. */
function finish(rt: Runtime, slot: ListenerSlot, ctx: RequestContext): void {
  const res = ctx.res;
  ctx.status = res.status;
  if (!res.finished) {
    // The client went away before the response was complete: stop the upstream request too
    // (unless others are waiting for it: a cache fetch they read along).
    if (!ctx.keepUpstream) ctx.abortUpstream?.();
    if (ctx.error === undefined) {
      ctx.error = new ProxyError('client_closed', undefined, { source: 'downstream' });
      if (!res.headersSent) ctx.status = 499;
    }
  }
  if (ctx.error !== undefined) noteOffence(rt, ctx);
  const now = performance.now();
  if (rt.log !== null) rt.log.write(rt.line(ctx, now));
  if (rt.stats !== null) {
    const cl = ctx.req.headers['content-length'];
    if (ctx.bytesIn === 0 && cl !== undefined && ctx.req.readableEnded) ctx.bytesIn = Number(cl) || 0;
    rt.stats.record(ctx, now, ctx.trace?.traceId ?? null);
  }
  if (slot.stats !== null) slot.stats.inflight--;
  if (rt.tracer !== null) rt.tracer.requestSpan(ctx, now);
  const usage = ctx.plan.usage;
  if (--usage.active === 0 && usage.retired) usage.onDrained?.();
  rt.inflight--;
  if (rt.inflight === 0 && rt.onIdle !== null) rt.onIdle();
}

/** 301 for GET and HEAD, 308 for the rest (keeps the method and body), to the same host and target. */
function redirectToHttps(rt: Runtime, ctx: RequestContext, port: number, target: string): void {
  const host = ctx.host.includes(':') && !ctx.host.startsWith('[') ? `[${ctx.host}]` : ctx.host;
  if (host === '') return fail(rt, ctx, 'bad_request', false);
  const method = ctx.req.method ?? 'GET';
  const location = `https://${host}${port === 443 ? '' : `:${port}`}${target.startsWith('/') ? target : `${ctx.path}${ctx.query}`}`;
  ctx.res.writeHead(
    method === 'GET' || method === 'HEAD' ? 301 : 308,
    { location, 'content-length': '0', 'x-request-id': ctx.id },
    ctx.upgrade !== null,
  );
  ctx.res.end();
}

function hasLength(cl: string | undefined): boolean {
  return cl !== undefined && cl !== '0';
}

/** `OPTIONS *` asks about the server as a whole (RFC 9110 §9.3.7); any other method with `*` is malformed. */
function asterisk(rt: Runtime, ctx: RequestContext): void {
  if (ctx.req.method !== 'OPTIONS') return fail(rt, ctx, 'bad_request', false);
  ctx.res.writeHead(
    200,
    { allow: ALLOW, 'content-length': '0', 'x-request-id': ctx.id },
    ctx.upgrade !== null,
  );
  ctx.res.end();
}
