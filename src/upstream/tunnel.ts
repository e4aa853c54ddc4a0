// Upgrades (WebSockets, RFC 6455): the part of the request path after `select`. An upgrade request
// has been accepted, routed, checked by the request middlewares and given a target by the same code
// as any request (pipeline/run.ts); here it is connected to the target (plain TCP, or TLS with the
// upstream's CA, server name and client certificate for https:// targets), the handshake is sent
// with the forwarding headers, and the target's answer is relayed through the request's responder.
// A 101 turns the connection into a byte tunnel, both directions piped with backpressure, ended by
// the idle and lifetime timeouts; any other answer is relayed and the connection closed. A connect
// failure tries another target, as for any request. WebSockets over HTTP/2 (RFC 8441) are not offered.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { fail } from '../pipeline/answer.ts';
import type { RequestContext, ResponseHead, UpstreamRequest } from '../pipeline/context.ts';
import { classifyUpstreamError, ProxyError } from '../pipeline/errors.ts';
import { connectionListed, HOP_BY_HOP } from '../pipeline/forwarding.ts';
import type { SocketResponder } from '../pipeline/responder.ts';
import type { Runtime } from '../pipeline/runtime.ts';
import { retryKindOf } from './retry.ts';
import type { Target } from './target.ts';
import type { Upstream } from './upstream.ts';

/** Only WebSocket upgrades are taken; any other Upgrade (h2c, ...) is served as plain HTTP/1.1. */
export function isWebSocketUpgrade(req: { headers: Record<string, unknown>; method?: string }): boolean {
  const u = req.headers.upgrade;
  return typeof u === 'string' && u.toLowerCase() === 'websocket' && req.method === 'GET';
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;

/** The largest response head a target may answer a handshake with. */
const MAX_HEAD = 64 * 1024;

/** Connects an upgrade request to its target (ctx.target) and relays the handshake. */
export function splice(rt: Runtime, ctx: RequestContext, ureq: UpstreamRequest): void {
  const client = (ctx.res as SocketResponder).socket;
  rt.tunnels.add(client);
  client.once('close', () => rt.tunnels.delete(client));
  ureq.headers.push('connection', 'upgrade', 'upgrade', 'websocket');
  void open(rt, ctx, ureq, client);
}

async function open(rt: Runtime, ctx: RequestContext, ureq: UpstreamRequest, client: Socket): Promise<void> {
  const upstream = ctx.upstream as Upstream;
  const settings = upstream.settings;
  const tried = new Set<Target>();
  const deadline = performance.now() + settings.responseTimeout;
  ctx.upstreamStart = performance.now();
  let target = ctx.target as Target;
  let up: Socket;
  for (;;) {
    ctx.target = target;
    ctx.attempts++;
    target.active++;
    try {
      up = await connectTo(target, settings.connectTimeout);
      upstream.outlier.success(target);
      break;
    } catch (err) {
      target.active--;
      const e = classifyUpstreamError(err);
      upstream.outlier.failure(target, e.reason);
      const kind = retryKindOf(e.reason);
      const next =
        kind === undefined || client.destroyed
          ? undefined
          : upstream.nextTarget(ctx, tried, kind, 'GET', true, deadline);
      if (next === undefined) return fail(rt, ctx, e, true);
      upstream.retries++;
      target = next;
    }
  }
  const t = target;
  up.once('close', () => t.active--);
  up.on('error', () => client.destroy());
  client.once('close', () => up.destroy());
  ctx.abortUpstream = () => up.destroy();
  if (client.destroyed) return void up.destroy();

  // ---- the handshake upstream
  let head = `${ureq.method} ${ureq.path} HTTP/1.1\r\n`;
  const h = ureq.headers;
  for (let i = 0; i < h.length; i += 2) {
    // A field a middleware or a certificate made that would break the head is not sent.
    if (!TOKEN.test(h[i]) || BAD_VALUE.test(h[i + 1])) continue;
    head += `${h[i]}: ${h[i + 1]}\r\n`;
  }
  up.write(`${head}\r\n`, 'latin1');
  // What the client sent after its head waits for the 101: a target that refuses the upgrade and
  // keeps its connection must not read those bytes as another request.

  // ---- its answer, relayed through the responder
  let answer: Answer;
  try {
    answer = await readHead(up, Math.max(1, deadline - performance.now()));
  } catch (err) {
    const e = err as ProxyError;
    upstream.outlier.failure(t, e.reason);
    up.destroy();
    return fail(rt, ctx, e, true);
  }
  ctx.upstreamMs = performance.now() - ctx.upstreamStart;
  const res = ctx.res;
  if (res.destroyed) return void up.destroy();
  const responseHead: ResponseHead = { status: answer.status, headers: answer.headers };
  const hooks = (ctx.route as NonNullable<RequestContext['route']>).onResponse;
  if (hooks !== null) for (const m of hooks) m.onResponse?.(ctx, responseHead);
  responseHead.headers['x-request-id'] = ctx.id;
  const via = responseHead.headers.via;
  responseHead.headers.via = via === undefined ? `1.1 ${rt.via}` : `${via}, 1.1 ${rt.via}`;

  if (answer.status !== 101) {
    // The target refused the handshake: its answer goes to the client, then the connection closes.
    res.writeHead(responseHead.status, responseHead.headers, true);
    up.setTimeout(settings.idleTimeout, () => client.destroy());
    relayBody(ctx, up, client, answer);
    return;
  }
  responseHead.headers.upgrade = answer.upgrade;
  res.writeHead(101, responseHead.headers);
  if (ctx.upgrade !== null && ctx.upgrade.length > 0) {
    ctx.bytesIn += ctx.upgrade.length;
    up.write(ctx.upgrade);
  }
  if (answer.rest.length > 0) {
    ctx.bytesOut += answer.rest.length;
    client.write(answer.rest);
  }
  tunnel(ctx, upstream, client, up);
}

/** The tunnel proper: bytes both ways with backpressure, counted, ended by the timeouts. */
function tunnel(ctx: RequestContext, upstream: Upstream, client: Socket, up: Socket): void {
  client.on('data', (c: Buffer) => {
    ctx.bytesIn += c.length;
  });
  up.on('data', (c: Buffer) => {
    ctx.bytesOut += c.length;
  });
  client.pipe(up);
  up.pipe(client);
  up.resume();
  const idle = upstream.settings.tunnelIdleTimeout;
  if (idle > 0) {
    client.setTimeout(idle, () => client.destroy());
    up.setTimeout(idle, () => client.destroy());
  }
  const life = upstream.settings.tunnelMaxLifetime;
  if (life > 0) {
    const timer = setTimeout(() => client.destroy(), life);
    timer.unref();
    client.once('close', () => clearTimeout(timer));
  }
}

/** A refused handshake's body: by Content-Length when it has one, else until the target closes. */
function relayBody(ctx: RequestContext, up: Socket, client: Socket, answer: Answer): void {
  let left = answer.length;
  const send = (c: Buffer): void => {
    const chunk = left >= 0 && c.length > left ? c.subarray(0, left) : c;
    if (left >= 0) left -= chunk.length;
    ctx.bytesOut += chunk.length;
    if (chunk.length > 0) client.write(chunk);
    if (left === 0) {
      up.destroy();
      ctx.res.end();
    }
  };
  if (left === 0) return send(Buffer.alloc(0));
  if (answer.rest.length > 0) send(answer.rest);
  if (left === 0) return;
  up.on('data', send);
  up.once('end', () => ctx.res.end());
  up.resume();
}

function connectTo(target: Target, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const host = target.url.hostname.replace(/^\[|\]$/g, '');
    const secure = target.protocol === 'https';
    const port = Number(target.url.port || (secure ? 443 : 80));
    const tls = target.connect as { ca?: string; cert?: string; key?: string; servername?: string };
    const s: Socket = secure
      ? connectTls({
          host,
          port,
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          servername: tls.servername,
          rejectUnauthorized:
            (target.connect as { rejectUnauthorized?: boolean }).rejectUnauthorized !== false,
          ALPNProtocols: ['http/1.1'],
        })
      : connectTcp({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ProxyError('upstream_connect_timeout', 'connect timeout'));
    }, timeoutMs);
    s.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      if (secure) s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    });
  });
}

interface Answer {
  status: number;
  /** Headers without hop-by-hop ones (Connection, Upgrade, Transfer-Encoding kept aside). */
  headers: Record<string, string | string[]>;
  /** The Upgrade value of a 101. */
  upgrade: string;
  /** Content-Length of a refused handshake's body, or -1. */
  length: number;
  /** Bytes after the head. */
  rest: Buffer;
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*$/;

/** Reads the target's response head (up to 64 KiB); what follows it is `rest`. */
function readHead(s: Socket, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(
      () => done(new ProxyError('upstream_timeout', 'no handshake answer in time')),
      timeoutMs,
    );
    const onData = (c: Buffer) => {
      buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD)
          done(new ProxyError('upstream_protocol_error', 'handshake answer too large'));
        return;
      }
      const answer = parseHead(buf.toString('latin1', 0, end), buf.subarray(end + 4));
      if (answer === undefined) return done(new ProxyError('upstream_protocol_error', 'not an HTTP answer'));
      done(undefined, answer);
    };
    const onEnd = () => done(new ProxyError('upstream_reset', 'closed before answering'));
    const done = (err?: ProxyError, v?: Answer) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('close', onEnd);
      s.pause();
      if (err) reject(err);
      else resolve(v as Answer);
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
  });
}

function parseHead(text: string, rest: Buffer): Answer | undefined {
  const lines = text.split('\r\n');
  const m = STATUS_LINE.exec(lines[0]);
  if (m === null) return undefined;
  const status = Number(m[1]);
  const raw: [string, string][] = [];
  let listed: Set<string> | null = null;
  for (let i = 1; i < lines.length; i++) {
    const h = HEADER_LINE.exec(lines[i]);
    if (h === null) return undefined;
    const name = h[1].toLowerCase();
    raw.push([name, h[2]]);
    if (name === 'connection') listed = connectionListed(h[2]);
  }
  const headers: Record<string, string | string[]> = {};
  let upgrade = '';
  let length = -1;
  for (const [name, value] of raw) {
    if (name === 'upgrade') upgrade = value;
    if (name === 'content-length') {
      if (!/^\d+$/.test(value) || (length >= 0 && Number(value) !== length)) return undefined;
      length = Number(value);
    }
    // A refused handshake keeps its body framing; a 101 has none.
    const framing = status !== 101 && name === 'transfer-encoding';
    if (!framing && (HOP_BY_HOP.has(name) || listed?.has(name))) continue;
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  if (status === 101 && upgrade === '') return undefined;
  return { status, headers, upgrade, length, rest };
}
