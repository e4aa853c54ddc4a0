// WebSockets (HTTP/1.1 Upgrade, RFC 6455): routed, balanced and checked like any request, then a
// byte tunnel between client and target. The upgrade request goes upstream with the forwarding
// headers and `Connection: upgrade`; a 101 answer is relayed and both directions stream with
// backpressure (pipe); any other answer (the target refused the handshake) is relayed as it is and
// the connection closed. Idle and maximum-lifetime timeouts end a tunnel; one access-log line is
// written when it closes. WebSockets over HTTP/2 (RFC 8441) are not offered.
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { ListenerPlan } from '../config/compile.ts';
import type { LocalResponse } from '../middleware/types.ts';
import { requestId } from '../observe/requestId.ts';
import { RequestContext } from '../pipeline/context.ts';
import { classifyUpstreamError, ProxyError, REASONS, type Reason } from '../pipeline/errors.ts';
import { upstreamHeaders, viaHasLoop } from '../pipeline/forwarding.ts';
import { normalizePath } from '../pipeline/path.ts';
import { errorPage } from '../pipeline/respond.ts';
import { hostOnly, identifyClient, type Runtime } from '../pipeline/run.ts';
import { type MatchInput, matchRoute, upstreamPath } from '../routing/table.ts';
import type { Target } from './target.ts';

/** Only WebSocket upgrades are taken; any other Upgrade (h2c, ...) is served as plain HTTP/1.1. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return typeof u === 'string' && u.toLowerCase() === 'websocket' && req.method === 'GET';
}

export function upgradeHandler(rt: Runtime, listenerName: string) {
  return (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const listener = rt.plan.listeners.get(listenerName);
    if (listener === undefined) return void socket.destroy();
    void tunnel(rt, listener, req, socket, head).catch(() => socket.destroy());
  };
}

/** A fake response object for the request context: tunnels write to the socket directly. */
const NO_RESPONSE = { headersSent: false, destroyed: false } as unknown as RequestContext['res'];

async function tunnel(
  rt: Runtime,
  listener: ListenerPlan,
  req: IncomingMessage,
  client: Socket,
  head: Buffer,
) {
  const start = performance.now();
  const plan = rt.plan;
  const ctx = new RequestContext(
    requestId(req.headers['x-request-id']),
    plan,
    req,
    NO_RESPONSE,
    listener.name,
    listener.scheme,
    start,
  );
  rt.inflight++;
  plan.usage.active++;
  let bytesIn = 0;
  let done = false;
  let upstream: Socket | null = null;
  const finish = () => {
    if (done) return;
    done = true;
    ctx.bytesIn = bytesIn;
    const now = performance.now();
    if (rt.log !== null) rt.log.write(rt.line(ctx, now));
    if (rt.stats !== null) rt.stats.record(ctx, now, null);
    if (--plan.usage.active === 0 && plan.usage.retired) plan.usage.onDrained?.();
    rt.inflight--;
    if (rt.inflight === 0 && rt.onIdle !== null) rt.onIdle();
  };
  client.on('error', () => {});
  rt.tunnels?.add(client);
  client.once('close', () => {
    rt.tunnels?.delete(client);
    upstream?.destroy();
    finish();
  });
  const refuse = (reason: Reason | ProxyError): void => {
    const err = typeof reason === 'string' ? new ProxyError(reason) : reason;
    ctx.error = err;
    ctx.status = err.status;
    const page = errorPage(err, ctx.id, req.headers.accept, rt.via);
    writeRaw(client, page.status, { ...page.headers, connection: 'close' }, page.body);
    ctx.bytesOut = page.body.length;
  };

  // ---- accept and route, as for any request
  identifyClient(ctx, listener);
  const url = req.url ?? '/';
  if (url.length > plan.limits.maxUriLength) return refuse('uri_too_long');
  ctx.hostHeader = req.headers.host ?? '';
  ctx.host = hostOnly(ctx.hostHeader);
  const q = url.indexOf('?');
  const path = normalizePath(q < 0 ? url : url.slice(0, q));
  if (path === undefined || url.charCodeAt(0) !== 47) return refuse('bad_request');
  ctx.path = path;
  ctx.query = q < 0 ? '' : url.slice(q);
  if (viaHasLoop(req.headers.via, rt.via)) return refuse('loop_detected');
  const input: MatchInput = {
    host: ctx.host,
    sni: '',
    path,
    method: 'GET',
    headers: req.headers,
    query: ctx.query,
    params: undefined,
  };
  const route = matchRoute(listener.table, input);
  if (route === undefined) return refuse('route_not_found');
  ctx.route = route;
  if (route.onRequest !== null) {
    for (const m of route.onRequest) {
      const r = await m.onRequest?.(ctx);
      if (r !== undefined) return refuseLocal(client, ctx, r as LocalResponse, rt.via);
    }
  }

  // ---- select, connect (another target on a connect failure)
  const upstreamCfg = route.upstream;
  const tried = new Set<Target>();
  let target = upstreamCfg.pick(ctx);
  if (target === undefined) return refuse('no_healthy_target');
  const headers = (t: Target) => {
    const host = upstreamCfg.passHostHeader && ctx.hostHeader !== '' ? ctx.hostHeader : t.authority;
    const h = upstreamHeaders(ctx, host, rt.via, plan.forwarded);
    h.push('connection', 'upgrade', 'upgrade', 'websocket');
    return h;
  };
  for (;;) {
    ctx.target = target;
    ctx.attempts++;
    target.active++;
    try {
      upstream = await open(target, upstreamCfg.connectTimeout);
      upstreamCfg.recordSuccess(target);
      break;
    } catch (err) {
      target.active--;
      const e = classifyUpstreamError(err);
      upstreamCfg.recordFailure(target, e.reason);
      tried.add(target);
      const next = ctx.attempts < upstreamCfg.retry.attempts ? upstreamCfg.pick(ctx, tried) : undefined;
      if (next === undefined || client.destroyed) return refuse(e);
      target = next;
    }
  }
  const t = target;
  client.once('close', () => t.active--);
  if (client.destroyed) return void upstream.destroy();
  ctx.upstreamStart = performance.now();

  // ---- the handshake upstream, its answer relayed
  const lines = [`GET ${upstreamPath(route, ctx.path)}${ctx.query} HTTP/1.1`];
  const h = headers(t);
  for (let i = 0; i < h.length; i += 2) lines.push(`${h[i]}: ${h[i + 1]}`);
  upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (head.length > 0) upstream.write(head);
  const up = upstream;
  up.on('error', () => client.destroy());
  up.once('close', () => client.destroy());
  const answer = await readHead(up, upstreamCfg.responseTimeout).catch((err: Error) => err);
  if (answer instanceof Error) {
    upstreamCfg.recordFailure(t, 'upstream_timeout');
    up.destroy();
    return refuse(new ProxyError(answer.message === 'timeout' ? 'upstream_timeout' : 'upstream_reset'));
  }
  ctx.upstreamMs = performance.now() - ctx.upstreamStart;
  ctx.status = answer.status;
  if (answer.status !== 101) {
    // The target refused the handshake: its answer goes to the client as it is.
    client.write(answer.raw);
    if (answer.rest.length > 0) client.write(answer.rest);
    up.pipe(client);
    return;
  }
  client.write(answer.raw);
  if (answer.rest.length > 0) client.write(answer.rest);
  client.on('data', (c: Buffer) => {
    bytesIn += c.length;
  });
  up.on('data', (c: Buffer) => {
    ctx.bytesOut += c.length;
  });
  client.pipe(up);
  up.pipe(client);
  const idle = upstreamCfg.tunnelIdleTimeout;
  if (idle > 0) {
    client.setTimeout(idle, () => client.destroy());
    up.setTimeout(idle, () => client.destroy());
  }
  const life = upstreamCfg.tunnelMaxLifetime;
  if (life > 0) {
    const timer = setTimeout(() => client.destroy(), life);
    timer.unref();
    client.once('close', () => clearTimeout(timer));
  }
}

function open(target: Target, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const host = target.url.hostname.replace(/^\[|\]$/g, '');
    const s = connect({ host, port: Number(target.url.port || 80), noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Reads an HTTP response head (up to 64 KiB); what follows it is returned as `rest`. */
function readHead(s: Socket, timeoutMs: number): Promise<{ status: number; raw: Buffer; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error('timeout')), timeoutMs);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 65536) done(new Error('head too large'));
        return;
      }
      const raw = buf.subarray(0, end + 4);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw.toString('latin1', 0, 16));
      if (m === null) return done(new Error('not HTTP'));
      done(undefined, { status: Number(m[1]), raw, rest: buf.subarray(end + 4) });
    };
    const onEnd = () => done(new Error('closed'));
    const done = (err?: Error, v?: { status: number; raw: Buffer; rest: Buffer }) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('close', onEnd);
      s.pause();
      if (err) reject(err);
      else resolve(v as { status: number; raw: Buffer; rest: Buffer });
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
  });
}

function writeRaw(socket: Socket, status: number, headers: Record<string, string>, body: string): void {
  if (socket.destroyed) return;
  const lines = [`HTTP/1.1 ${status} ${statusText(status)}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

function refuseLocal(socket: Socket, ctx: RequestContext, r: LocalResponse, via: string): void {
  const reason = r.reason !== undefined && r.reason in REASONS ? (r.reason as Reason) : undefined;
  if (reason !== undefined) ctx.error = new ProxyError(reason, undefined, { source: 'downstream' });
  ctx.status = r.status;
  const body =
    r.body ?? (reason ? errorPage(ctx.error as ProxyError, ctx.id, ctx.req.headers.accept, via).body : '');
  writeRaw(
    socket,
    r.status,
    {
      ...r.headers,
      'x-request-id': ctx.id,
      'content-length': String(Buffer.byteLength(body)),
      connection: 'close',
    },
    body,
  );
}

function statusText(status: number): string {
  return (
    {
      400: 'Bad Request',
      403: 'Forbidden',
      404: 'Not Found',
      414: 'URI Too Long',
      429: 'Too Many Requests',
      502: 'Bad Gateway',
      503: 'Service Unavailable',
      504: 'Gateway Timeout',
      508: 'Loop Detected',
    }[status] ?? 'Error'
  );
}
