// The request lifecycle, stage by stage (docs/lifecycle.md):
//   accept → route → request → select → upstreamRequest → send → response → log
// `accept` checks that need the request head (URI length, header size, loops) run first here;
// the socket-level part of accept lives in server/http.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ListenerPlan, Plan } from '../config/compile.ts';
import { inList } from '../middleware/ipFilter.ts';
import type { LocalResponse } from '../middleware/types.ts';
import type { LogSink } from '../observe/accessLog.ts';
import { requestId } from '../observe/requestId.ts';
import type { ListenerStats, Stats } from '../observe/stats.ts';
import type { Tracer } from '../observe/tracing.ts';
import { type MatchInput, matchRoute, upstreamPath } from '../routing/table.ts';
import { tlsSocketOf } from '../server/tls.ts';
import { forward } from '../upstream/forward.ts';
import { RequestContext, type UpstreamRequest } from './context.ts';
import { ProxyError, REASONS, type Reason } from './errors.ts';
import { clientAddress, normalizeIp, upstreamHeaders, viaHasLoop } from './forwarding.ts';
import { normalizePath } from './path.ts';
import { respondError } from './respond.ts';

/** What the pipeline needs from the running Gatehouse. `plan` is swapped by reload. */
export interface Runtime {
  plan: Plan;
  /** The Via pseudonym, stable across reloads. */
  readonly via: string;
  log: LogSink | null;
  /** Formats one access-log line (accessLog.format). */
  line: (ctx: RequestContext, now: number) => string;
  /** Live figures for /metrics and the admin API; null without an admin listener. */
  stats: Stats | null;
  tracer: Tracer | null;
  inflight: number;
  onIdle: (() => void) | null;
  /** Client sockets of open WebSocket tunnels: outside the HTTP server's reach once upgraded. */
  tunnels?: Set<import('node:net').Socket>;
}

export function handleRequest(
  rt: Runtime,
  listener: ListenerPlan,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const start = performance.now();
  const plan = rt.plan;
  const ctx = new RequestContext(
    requestId(req.headers['x-request-id']),
    plan,
    req,
    res,
    listener.name,
    listener.scheme,
    start,
  );
  rt.inflight++;
  plan.usage.active++;
  if (rt.stats !== null) rt.stats.listener(listener.name).inflight++;
  if (rt.tracer !== null) ctx.trace = rt.tracer.begin(ctx);
  // 'close' comes exactly once, when the response is done or the connection is gone.
  res.on('close', () => finish(rt, ctx));

  // ---- accept (request head)
  identifyClient(ctx, listener);
  const limits = plan.limits;
  const url = req.url ?? '/';
  if (url.length > limits.maxUriLength) return fail(rt, ctx, 'uri_too_long', true);
  if (headerBytes(req.rawHeaders) > limits.maxRequestHeaders) return fail(rt, ctx, 'headers_too_large', true);
  // HTTP/2 carries the host in :authority; a Host that names another one is malformed (RFC 9113 §8.3.1).
  const authority = req.headers[':authority'] as string | undefined;
  if (
    authority !== undefined &&
    req.headers.host !== undefined &&
    req.headers.host.toLowerCase() !== authority.toLowerCase()
  )
    return fail(rt, ctx, 'bad_request', false);
  ctx.hostHeader = authority ?? req.headers.host ?? '';
  if (listener.hsts) res.setHeader('strict-transport-security', listener.hsts);
  ctx.host = hostOnly(ctx.hostHeader);
  const target = splitTarget(url);
  if (target === undefined) return fail(rt, ctx, 'bad_request', true);
  ctx.path = target.path;
  ctx.query = target.query;
  if (viaHasLoop(req.headers.via, rt.via)) return fail(rt, ctx, 'loop_detected', false);
  if (listener.redirectPort != null) return redirectToHttps(rt, ctx, listener.redirectPort, url);
  let sni = '';
  if (listener.scheme === 'https') {
    const tls = tlsSocketOf(req as never);
    sni = typeof tls?.servername === 'string' ? tls.servername.toLowerCase() : '';
    if (listener.clientCertHeaders && tls)
      ctx.clientCert = clientCertificate(tls, listener.clientCertHeaders);
  }

  // ---- route
  const input: MatchInput = {
    host: ctx.host,
    sni,
    path: ctx.path,
    method: req.method ?? 'GET',
    headers: req.headers,
    query: ctx.query,
    params: undefined,
  };
  const route = matchRoute(listener.table, input);
  if (route === undefined) return fail(rt, ctx, 'route_not_found', false);
  ctx.route = route;

  const cl = req.headers['content-length'];
  if (cl !== undefined && Number(cl) > route.maxRequestBody) return fail(rt, ctx, 'body_too_large', true);

  // ---- request
  if (route.onRequest !== null) {
    for (let i = 0; i < route.onRequest.length; i++) {
      const r = (route.onRequest[i].onRequest as NonNullable<(typeof route.onRequest)[0]['onRequest']>)(ctx);
      if (r !== undefined && typeof (r as Promise<unknown>).then === 'function') {
        // An asynchronous middleware: finish the chain from here once it has answered.
        void continueAsync(rt, ctx, i, r as Promise<LocalResponse | undefined>);
        return;
      }
      if (r !== undefined) return respondLocal(rt, ctx, r as LocalResponse);
    }
  }
  proceed(rt, ctx);
}

async function continueAsync(
  rt: Runtime,
  ctx: RequestContext,
  from: number,
  pending: Promise<LocalResponse | undefined>,
): Promise<void> {
  const hooks = ctx.route?.onRequest ?? [];
  try {
    let r = await pending;
    for (let i = from + 1; r === undefined && i < hooks.length; i++) r = await hooks[i].onRequest?.(ctx);
    if (r !== undefined) return respondLocal(rt, ctx, r);
  } catch {
    return fail(rt, ctx, 'internal', false);
  }
  if (!ctx.res.destroyed) proceed(rt, ctx);
}

function proceed(rt: Runtime, ctx: RequestContext): void {
  const route = ctx.route as NonNullable<RequestContext['route']>;
  const req = ctx.req;
  // ---- select
  const target = route.upstream.pick(ctx);
  if (target === undefined) return fail(rt, ctx, 'no_healthy_target', false);
  ctx.target = target;

  // ---- upstreamRequest
  const upstream = route.upstream;
  const upstreamHost = upstream.passHostHeader && ctx.hostHeader !== '' ? ctx.hostHeader : target.authority;
  const headers = upstreamHeaders(ctx, upstreamHost, rt.via, ctx.plan.forwarded);
  const ureq: UpstreamRequest = {
    method: req.method ?? 'GET',
    path: upstreamPath(route, ctx.path) + ctx.query,
    headers,
  };
  if (route.onUpstreamRequest !== null) {
    for (const m of route.onUpstreamRequest) m.onUpstreamRequest?.(ctx, ureq);
  }

  // ---- send, response
  forward(rt, ctx, ureq);
}

/** The TCP peer, whether it is a trusted proxy, and so the client's address. */
export function identifyClient(ctx: RequestContext, listener: ListenerPlan): void {
  const req = ctx.req;
  const peer = normalizeIp(req.socket.remoteAddress);
  ctx.peer = peer;
  ctx.peerTrusted = listener.trusted !== null && peer !== '' && inList(listener.trusted, peer);
  ctx.clientIp = ctx.peerTrusted
    ? clientAddress(peer, listener.trusted as BlockList, joined(req.headers['x-forwarded-for']))
    : peer;
}

/** Answers with a middleware's local response (401, 403, 429, redirect, ...). */
function respondLocal(rt: Runtime, ctx: RequestContext, r: LocalResponse): void {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return;
  const reason = r.reason !== undefined && r.reason in REASONS ? (r.reason as Reason) : undefined;
  if (r.body === undefined && reason !== undefined) {
    // A refusal without a body of its own gets the standard error page, with the middleware's headers.
    ctx.error = new ProxyError(reason, undefined, { source: 'downstream' });
    ctx.bytesOut = respondError(res, ctx.error, ctx.id, ctx.req.headers.accept, rt.via, false, r.headers);
    return;
  }
  if (reason !== undefined) ctx.error = new ProxyError(reason, undefined, { source: 'downstream' });
  const body = r.body ?? '';
  res.writeHead(r.status, {
    ...r.headers,
    'x-request-id': ctx.id,
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(ctx.req.method === 'HEAD' ? undefined : body);
  ctx.bytesOut = body.length;
}

/** Ends the request with an error page; `close` when the connection cannot be reused. */
export function fail(rt: Runtime, ctx: RequestContext, reason: Reason | ProxyError, close: boolean): void {
  const err = typeof reason === 'string' ? new ProxyError(reason) : reason;
  ctx.error = err;
  ctx.bytesOut = respondError(ctx.res, err, ctx.id, ctx.req.headers.accept, rt.via, close);
}

/** The `log` stage: exactly once per request, when the response is done or the client has gone. */
function finish(rt: Runtime, ctx: RequestContext): void {
  const res = ctx.res;
  ctx.status = res.headersSent ? res.statusCode : 0;
  if (!res.writableFinished) {
    // The client went away before the response was complete: stop the upstream request too.
    ctx.abortUpstream?.();
    if (ctx.error === undefined) {
      ctx.error = new ProxyError('client_closed', undefined, { source: 'downstream' });
      if (!res.headersSent) ctx.status = 499;
    }
  }
  const now = performance.now();
  if (rt.log !== null) rt.log.write(rt.line(ctx, now));
  if (rt.stats !== null) {
    const cl = ctx.req.headers['content-length'];
    if (ctx.bytesIn === 0 && cl !== undefined && ctx.req.readableEnded) ctx.bytesIn = Number(cl) || 0;
    rt.stats.record(ctx, now, ctx.trace?.traceId ?? null);
    (rt.stats.listeners.get(ctx.listener) as ListenerStats).inflight--;
  }
  if (rt.tracer !== null) rt.tracer.requestSpan(ctx, now);
  const usage = ctx.plan.usage;
  if (--usage.active === 0 && usage.retired) usage.onDrained?.();
  rt.inflight--;
  if (rt.inflight === 0 && rt.onIdle !== null) rt.onIdle();
}

/** 301 for GET and HEAD, 308 for the rest (keeps the method and body), to the same host and target. */
function redirectToHttps(rt: Runtime, ctx: RequestContext, port: number, target: string): void {
  const res = ctx.res;
  const host = ctx.host.includes(':') && !ctx.host.startsWith('[') ? `[${ctx.host}]` : ctx.host;
  if (host === '') return fail(rt, ctx, 'bad_request', false);
  const method = ctx.req.method ?? 'GET';
  const location = `https://${host}${port === 443 ? '' : `:${port}`}${target.startsWith('/') ? target : `${ctx.path}${ctx.query}`}`;
  res.writeHead(method === 'GET' || method === 'HEAD' ? 301 : 308, {
    location,
    'content-length': '0',
    'x-request-id': ctx.id,
  });
  res.end();
}

/** The verified client certificate's subject, SHA-256 fingerprint and verification result. */
function clientCertificate(
  tls: TLSSocket,
  names: { subject: string; fingerprint: string; verified: string },
): string[] {
  const cert = tls.getPeerCertificate();
  // Empty values are not sent; the names are still removed from what the client sent.
  if (cert === null || cert.raw === undefined)
    return [names.verified, 'NONE', names.subject, '', names.fingerprint, ''];
  const subject = Object.entries(cert.subject ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(',');
  return [
    names.verified,
    tls.authorized ? 'SUCCESS' : 'FAILED',
    names.subject,
    subject,
    names.fingerprint,
    (cert.fingerprint256 ?? '').replace(/:/g, '').toLowerCase(),
  ];
}

/** Bytes of the header block as the client sent it (names, values, ": " and CRLF). */
function headerBytes(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i].length + 2;
  return n;
}

/** `Example.COM:8080` → `example.com`; `[::1]:80` → `[::1]`. */
export function hostOnly(host: string): string {
  if (host === '') return '';
  let h = host;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    h = end > 0 ? h.slice(0, end + 1) : h;
  } else {
    const colon = h.lastIndexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** Splits the request target into a normalised path and the query ('' or '?...'); undefined if malformed. */
function splitTarget(url: string): { path: string; query: string } | undefined {
  let u = url;
  if (u.charCodeAt(0) !== 47 /* / */) {
    if (u === '*') return { path: '*', query: '' };
    // absolute-form (RFC 9112 §3.2.2): keep path and query only
    if (!/^https?:\/\//i.test(u)) return undefined;
    const slash = u.indexOf('/', u.indexOf('//') + 2);
    u = slash < 0 ? '/' : u.slice(slash);
  }
  const q = u.indexOf('?');
  const rawPath = q < 0 ? u : u.slice(0, q);
  const path = normalizePath(rawPath);
  if (path === undefined) return undefined;
  return { path, query: q < 0 ? '' : u.slice(q) };
}

function joined(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
