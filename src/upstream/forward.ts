// The `send` and `response` stages: one dispatch through the target's keep-alive pool, bodies
// streamed both ways with backpressure (undici pauses reading the request body when the upstream
// socket is full; we pause the upstream response when the client socket is full), the client going
// away aborts the upstream request, and a failure becomes a ProxyError with a reason.
//
// A connection failure (nothing reached the origin) on a request whose body has not been read is
// tried once more on each other target; the full retry policy (statuses, budgets, per-try
// timeouts) belongs to the resilience work.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RequestContext, ResponseHead, UpstreamRequest } from '../pipeline/context.ts';
import { classifyUpstreamError, ProxyError } from '../pipeline/errors.ts';
import { connectionListed, HOP_BY_HOP } from '../pipeline/forwarding.ts';
import { fail, type Runtime } from '../pipeline/run.ts';
import type { Target } from './target.ts';

type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

export function forward(rt: Runtime, ctx: RequestContext, ureq: UpstreamRequest): void {
  const req = ctx.req;
  const route = ctx.route as NonNullable<RequestContext['route']>;
  let body: Readable | null = null;
  const cl = req.headers['content-length'];
  if (cl !== undefined) {
    if (cl !== '0') body = req;
  } else if (req.headers['transfer-encoding'] !== undefined) {
    body = Readable.from(limitBody(req, route.maxRequestBody, ctx), { objectMode: false });
  }
  if (body !== null && ctx.plan.limits.bodyTimeout > 0) {
    req.setTimeout(ctx.plan.limits.bodyTimeout, () => {
      // Answer first (the connection closes after it), then stop the upstream request once the
      // answer has reached the socket: aborting destroys the half-read body, and with it the socket.
      fail(rt, ctx, new ProxyError('request_timeout', 'request body idle'), true);
      const abort = ctx.abortUpstream;
      if (abort) ctx.res.once('finish', abort);
    });
    req.once('end', () => req.setTimeout(0));
  }
  new Exchange(rt, ctx, ureq, body).send(ctx.target as Target);
}

async function* limitBody(req: IncomingMessage, max: number, ctx: RequestContext): AsyncIterable<Buffer> {
  let seen = 0;
  for await (const chunk of req) {
    seen += (chunk as Buffer).length;
    if (seen > max) {
      ctx.error = new ProxyError('body_too_large');
      throw ctx.error;
    }
    yield chunk as Buffer;
  }
}

/** One request's conversation with the upstream: the undici dispatch handler. */
class Exchange implements Dispatcher.DispatchHandler {
  readonly rt: Runtime;
  readonly ctx: RequestContext;
  readonly ureq: UpstreamRequest;
  readonly body: Readable | null;
  controller: Controller | null = null;
  tried: Set<Target> | undefined = undefined;
  gotResponse = false;
  /** The response's Content-Length, or -1: a body that arrives whole in one chunk is written with end(). */
  expected = -1;
  ended = false;
  readonly resume: () => void;
  readonly abort: () => void;

  constructor(rt: Runtime, ctx: RequestContext, ureq: UpstreamRequest, body: Readable | null) {
    this.rt = rt;
    this.ctx = ctx;
    this.ureq = ureq;
    this.body = body;
    this.resume = () => this.controller?.resume();
    this.abort = () => this.controller?.abort(new ProxyError('client_closed'));
  }

  send(target: Target): void {
    const ctx = this.ctx;
    ctx.target = target;
    ctx.attempts++;
    ctx.abortUpstream = this.abort;
    ctx.upstreamStart = performance.now();
    target.active++;
    const upstream = (ctx.route as NonNullable<RequestContext['route']>).upstream;
    target.pool.dispatch(
      {
        method: this.ureq.method,
        path: this.ureq.path,
        headers: this.ureq.headers,
        body: this.body,
        headersTimeout: upstream.responseTimeout,
        bodyTimeout: upstream.idleTimeout,
      },
      this,
    );
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.ctx.res.destroyed) controller.abort(new ProxyError('client_closed'));
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers): void {
    if (statusCode < 200) return; // 1xx: Node's server has already answered Expect itself
    const ctx = this.ctx;
    const res = ctx.res;
    this.gotResponse = true;
    ctx.upstreamMs = performance.now() - ctx.upstreamStart;
    if (res.destroyed) {
      controller.abort(new ProxyError('client_closed'));
      return;
    }
    const head: ResponseHead = { status: statusCode, headers: responseHeaders(headers, ctx, this.rt.via) };
    const hooks = (ctx.route as NonNullable<RequestContext['route']>).onResponse;
    if (hooks !== null) for (const m of hooks) m.onResponse?.(ctx, head);
    const cl = head.headers['content-length'];
    this.expected = typeof cl === 'string' ? Number(cl) : -1;
    res.writeHead(head.status, head.headers);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    const ctx = this.ctx;
    if (this.ended) return;
    if (ctx.bytesOut === 0 && chunk.length === this.expected) {
      // The whole body in one chunk: head and body go out in one write.
      ctx.bytesOut = chunk.length;
      this.ended = true;
      ctx.res.end(chunk);
      return;
    }
    ctx.bytesOut += chunk.length;
    if (!ctx.res.write(chunk)) {
      controller.pause();
      this.ctx.res.once('drain', this.resume);
    }
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    this.release();
    if (this.ended) return;
    const res = this.ctx.res;
    if (trailers && Object.keys(trailers).length > 0 && res.chunkedEncoding)
      res.addTrailers(trailers as Record<string, string>);
    res.end();
  }

  onResponseError(_controller: Controller, err: Error): void {
    this.release();
    const ctx = this.ctx;
    if (ctx.res.writableEnded || ctx.res.destroyed) {
      // Already answered (408) or the client is gone: nothing more to send.
      ctx.error ??= new ProxyError('client_closed');
      return;
    }
    // A chunked body over the limit ends the exchange with the error the body reader recorded.
    const e = ctx.error?.reason === 'body_too_large' ? ctx.error : classifyUpstreamError(err);
    if (e.retryable && !this.gotResponse && this.body === null) {
      this.tried ??= new Set();
      this.tried.add(ctx.target as Target);
      const next = (ctx.route as NonNullable<RequestContext['route']>).upstream.pick(ctx, this.tried);
      if (next !== undefined) {
        this.send(next);
        return;
      }
    }
    // The response has started: all we can do is cut it, so the client sees it incomplete.
    if (ctx.res.headersSent) {
      ctx.error = e;
      ctx.res.destroy();
      return;
    }
    fail(this.rt, ctx, e, this.body !== null && !ctx.req.readableEnded);
  }

  release(): void {
    this.ctx.abortUpstream = undefined;
    const t = this.ctx.target;
    if (t !== undefined) t.active--;
    if (this.ctx.upstreamMs < 0 && this.ctx.upstreamStart > 0)
      this.ctx.upstreamMs = performance.now() - this.ctx.upstreamStart;
  }
}

/**
 * The upstream's response headers as sent to the client: copied into a new object rather than
 * changed with `delete`, which would put V8's object into slow dictionary mode (measured: 3x the
 * cost here, and slower header serialisation after).
 */
function responseHeaders(h: Headers, ctx: RequestContext, via: string): Record<string, string | string[]> {
  const conn = h.connection;
  const listed =
    conn === undefined ? null : connectionListed(typeof conn === 'string' ? conn : conn.join(','));
  const out: Record<string, string | string[]> = {};
  for (const name in h) {
    const v = h[name];
    if (v === undefined || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = v;
  }
  const loc = out.location;
  if (typeof loc === 'string') out.location = rewriteLocation(loc, ctx);
  const cloc = out['content-location'];
  if (typeof cloc === 'string') out['content-location'] = rewriteLocation(cloc, ctx);
  const upstreamVia = out.via;
  out.via = upstreamVia === undefined ? `1.1 ${via}` : `${upstreamVia}, 1.1 ${via}`;
  out['x-request-id'] = ctx.id;
  return out;
}

/**
 * A redirect to the target's own address (`http://127.0.0.1:4000/x`) becomes one to the address
 * the client used (`https://example.com/api/x`), putting back a prefix the route stripped, as
 * nginx's `proxy_redirect default` does. Other locations are left alone.
 */
export function rewriteLocation(loc: string, ctx: RequestContext): string {
  const target = ctx.target as Target;
  const origin = target.id;
  if (loc.length < origin.length || loc.slice(0, origin.length).toLowerCase() !== origin) return loc;
  const rest = loc.slice(origin.length);
  if (rest !== '' && rest[0] !== '/' && rest[0] !== '?' && rest[0] !== '#') return loc;
  if (ctx.hostHeader === '') return loc;
  const route = ctx.route as NonNullable<RequestContext['route']>;
  const prefix = route.stripPrefix ? route.pathValue : '';
  return `${ctx.scheme}://${ctx.hostHeader}${prefix}${rest === '' ? '/' : rest}`;
}
