// The `send` and `response` stages: one dispatch per try through the target's keep-alive pool,
// bodies streamed both ways with backpressure (undici pauses reading the request body when the
// upstream socket is full; we pause the upstream response when the client socket is full), the
// client going away aborts the upstream request, and a failure becomes a ProxyError with a reason.
//
// Retries (docs/resilience.md): a failed try goes to a target not tried yet when the upstream's
// policy allows it: the failure kind is in `retry.on` (or the status in `retry.statuses`), the
// method is idempotent (or a connect failure: nothing reached the target), the request body has not
// been read, the retry budget has room, and tries and the response deadline are left. Nothing of a
// response is sent to the client before it is chosen as the answer, so a retry never follows bytes.
// Every try's outcome feeds the upstream's outlier detection.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { enterUpstream, watchBodyRate } from '../limits/index.ts';
import { fail } from '../pipeline/answer.ts';
import { h2HasBody, peekedThenRest } from '../pipeline/body.ts';
import type { RequestContext, ResponseHead, UpstreamRequest } from '../pipeline/context.ts';
import { classifyUpstreamError, ProxyError } from '../pipeline/errors.ts';
import { connectionListed, HOP_BY_HOP } from '../pipeline/forwarding.ts';
import type { Runtime } from '../pipeline/runtime.ts';
import { type RetryKind, retryKindOf } from './retry.ts';
import type { Target } from './target.ts';
import type { Upstream } from './upstream.ts';

type Controller = Dispatcher.DispatchController;
type Headers = Record<string, string | string[] | undefined>;

export function forward(rt: Runtime, ctx: RequestContext, ureq: UpstreamRequest): void {
  const req = ctx.req;
  const upstream = ctx.upstream as Upstream;
  const target = ctx.target as Target;
  // limits.upstreamConnectionsPerClient (limits/index.ts): over it, 429 client_upstream_limit has
  // been answered; within it, a slot is held until the responder closes.
  if (!enterUpstream(rt, ctx)) return;
  if (upstream.overflowing(target)) {
    upstream.overflows++;
    return fail(
      rt,
      ctx,
      'upstream_overflow',
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined,
    );
  }
  const bodyKind: BodyKind =
    req.headers['content-length'] !== undefined
      ? req.headers['content-length'] === '0'
        ? 'none'
        : 'length'
      : req.headers['transfer-encoding'] !== undefined || h2HasBody(req)
        ? 'chunked'
        : 'none';
  if (bodyKind !== 'none' && !ctx.bodyComplete && ctx.plan.limits.bodyTimeout > 0) {
    req.setTimeout(ctx.plan.limits.bodyTimeout, () => {
      // Answer first (the connection closes after it), then stop the upstream request once the
      // answer has reached the socket: aborting destroys the half-read body, and with it the socket.
      fail(rt, ctx, new ProxyError('request_timeout', 'request body idle'), true);
      const abort = ctx.abortUpstream;
      if (abort) ctx.res.onFinish(abort);
    });
    req.once('end', () => req.setTimeout(0));
  }
  // limits.minRequestBodyRate: a body still arriving is measured until it ends (408 when too slow).
  if (bodyKind !== 'none' && !ctx.bodyComplete) watchBodyRate(rt, ctx);
  upstream.active++;
  upstream.retry.budget.request();
  new Exchange(rt, ctx, ureq, upstream, bodyKind).send(target);
}

type BodyKind = 'none' | 'length' | 'chunked';

/** gRPC status fields, which a trailers-only response carries in its headers. */
const GRPC_STATUS_FIELDS = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'];

async function* limitBody(
  req: IncomingMessage,
  max: number,
  ctx: RequestContext,
  already = 0,
): AsyncIterable<Buffer> {
  let seen = already;
  for await (const chunk of req) {
    seen += (chunk as Buffer).length;
    ctx.bytesIn = seen;
    if (seen > max) {
      ctx.error = new ProxyError('body_too_large');
      throw ctx.error;
    }
    yield chunk as Buffer;
  }
}

/** One request's conversation with the upstream, over one or more tries: the undici dispatch handler. */
class Exchange implements Dispatcher.DispatchHandler {
  readonly rt: Runtime;
  readonly ctx: RequestContext;
  readonly ureq: UpstreamRequest;
  readonly upstream: Upstream;
  readonly bodyKind: BodyKind;
  controller: Controller | null = null;
  /** Targets tried so far (only built when a retry is considered). */
  tried: Set<Target> | undefined = undefined;
  /** When the response headers must have arrived, over all tries (timeouts.response). */
  deadline = 0;
  gotResponse = false;
  /** A response that will be retried: its body is read and dropped, then `next` is tried. */
  discarding = false;
  next: Target | undefined = undefined;
  /** The response's Content-Length, or -1: a body that arrives whole in one chunk is written with end(). */
  expected = -1;
  /** A gRPC trailers-only answer's status fields, sent to an HTTP/2 client as trailers. */
  grpcTrailers: Record<string, string> | null = null;
  ended = false;
  done = false;
  /** The per-try timer (only with an explicit retry.perTryTimeout), and its error if it fired before the try started. */
  timer: NodeJS.Timeout | undefined = undefined;
  timedOut: ProxyError | undefined = undefined;
  readonly onTryTimeout: () => void;
  /** The open CLIENT span of this try ('' when tracing is off or none is open). */
  spanId = '';
  spanStart = 0;
  readonly resume: () => void;
  readonly abort: () => void;

  constructor(
    rt: Runtime,
    ctx: RequestContext,
    ureq: UpstreamRequest,
    upstream: Upstream,
    bodyKind: BodyKind,
  ) {
    this.rt = rt;
    this.ctx = ctx;
    this.ureq = ureq;
    this.upstream = upstream;
    this.bodyKind = bodyKind;
    this.resume = () => this.controller?.resume();
    this.abort = () => this.controller?.abort(new ProxyError('client_closed'));
    this.onTryTimeout = () => {
      this.timer = undefined;
      const err = new ProxyError('upstream_timeout', 'no response headers within the per-try timeout');
      if (this.controller !== null) this.controller.abort(err);
      else this.timedOut = err;
    };
  }

  send(target: Target): void {
    const ctx = this.ctx;
    const now = performance.now();
    if (ctx.attempts === 0) {
      ctx.upstreamStart = now;
      this.deadline = now + this.upstream.settings.responseTimeout;
    }
    ctx.target = target;
    ctx.attempts++;
    ctx.abortUpstream = this.abort;
    this.controller = null;
    this.gotResponse = false;
    this.discarding = false;
    this.next = undefined;
    this.timedOut = undefined;
    target.active++;
    if (ctx.trace !== null) this.traceTry();
    const tryTimeout = Math.max(1, Math.min(this.upstream.settings.perTryTimeout, this.deadline - now));
    if (this.upstream.settings.preciseTryTimeout) this.timer = setTimeout(this.onTryTimeout, tryTimeout);
    const req = ctx.req;
    target.pool.dispatch(
      {
        method: this.ureq.method,
        path: this.ureq.path,
        headers: this.ureq.headers,
        body:
          this.bodyKind === 'none'
            ? null
            : ctx.body !== null
              ? Readable.from(
                  ctx.bodyComplete
                    ? [ctx.body]
                    : peekedThenRest(
                        ctx.body,
                        this.bodyKind === 'length'
                          ? req
                          : limitBody(
                              req,
                              (ctx.route as NonNullable<RequestContext['route']>).maxRequestBody,
                              ctx,
                              ctx.body.length,
                            ),
                      ),
                  { objectMode: false },
                )
              : this.bodyKind === 'length'
                ? req
                : Readable.from(
                    limitBody(req, (ctx.route as NonNullable<RequestContext['route']>).maxRequestBody, ctx),
                    { objectMode: false },
                  ),
        headersTimeout: tryTimeout,
        bodyTimeout: this.upstream.settings.idleTimeout,
      },
      this,
    );
  }

  /** A span id for this try, sent upstream in traceparent (replacing the client's). */
  traceTry(): void {
    const ctx = this.ctx;
    const tracer = this.rt.tracer;
    if (tracer === null || ctx.trace === null) return;
    this.endSpan(0, undefined);
    const { spanId, traceparent } = tracer.child(ctx.trace);
    this.spanId = spanId;
    this.spanStart = performance.now();
    const h = this.ureq.headers;
    let found = false;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === 'traceparent') {
        h[i + 1] = traceparent;
        found = true;
      }
    }
    if (!found) {
      h.push('traceparent', traceparent);
      if (ctx.trace.tracestate !== undefined && !h.includes('tracestate'))
        h.push('tracestate', ctx.trace.tracestate);
    }
  }

  /** Ends the current try's CLIENT span, if one is open. */
  endSpan(status: number, error: string | undefined): void {
    if (this.spanId === '') return;
    this.rt.tracer?.attemptSpan(this.ctx, this.spanId, this.spanStart, performance.now(), status, error);
    this.spanId = '';
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.ctx.res.destroyed) controller.abort(new ProxyError('client_closed'));
    else if (this.timedOut !== undefined) controller.abort(this.timedOut);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers): void {
    if (statusCode < 200) return; // 1xx: Node's server has already answered Expect itself
    const ctx = this.ctx;
    const res = ctx.res;
    const upstream = this.upstream;
    const target = ctx.target as Target;
    this.gotResponse = true;
    this.stopTimer();
    if (this.spanId !== '') this.endSpan(statusCode, undefined);
    upstream.outlier.response(target, statusCode);
    if (res.destroyed) {
      controller.abort(new ProxyError('client_closed'));
      return;
    }
    if (upstream.retry.statuses?.(statusCode)) {
      this.next = this.nextTarget('status');
      if (this.next !== undefined) {
        this.discarding = true;
        return;
      }
    }
    ctx.upstreamMs = performance.now() - ctx.upstreamStart;
    const head: ResponseHead = { status: statusCode, headers: responseHeaders(headers, ctx, this.rt.via) };
    const hooks = (ctx.route as NonNullable<RequestContext['route']>).onResponse;
    if (hooks !== null) for (const m of hooks) m.onResponse?.(ctx, head);
    const cl = head.headers['content-length'];
    this.expected = typeof cl === 'string' ? Number(cl) : -1;
    if (
      head.headers['grpc-status'] !== undefined &&
      res.http2 &&
      (res as { endsWithHeaders?: boolean }).endsWithHeaders !== true
    ) {
      // Trailers-only (RFC: gRPC over HTTP/2): the status must arrive in the frame that ends the
      // stream. The HTTP/2 stream responder (server/h2) sends such a head with END_STREAM as it is;
      // Node's compatibility API cannot end a stream with its headers, so there it goes as trailers.
      this.grpcTrailers = {};
      for (const f of GRPC_STATUS_FIELDS) {
        const v = head.headers[f];
        if (typeof v === 'string') this.grpcTrailers[f] = v;
        delete head.headers[f];
      }
      this.expected = -1;
    }
    res.writeHead(head.status, head.headers);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    const ctx = this.ctx;
    if (this.ended || this.discarding) return;
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
      ctx.res.onDrain(this.resume);
    }
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    this.release();
    if (this.discarding) return this.retry(this.next as Target);
    this.finish();
    if (this.ended) return;
    const res = this.ctx.res;
    if (this.grpcTrailers !== null)
      res.trailers({ ...this.grpcTrailers, ...(trailers as Record<string, string>) });
    else if (trailers && Object.keys(trailers).length > 0) res.trailers(trailers as Record<string, string>);
    res.end();
  }

  onResponseError(_controller: Controller, err: Error): void {
    this.release();
    if (this.spanId !== '') this.endSpan(0, classifyUpstreamError(err).reason);
    const ctx = this.ctx;
    if (ctx.res.ended || ctx.res.destroyed) {
      // Already answered (408) or the client is gone: nothing more to send.
      ctx.error ??= new ProxyError('client_closed');
      return this.finish();
    }
    if (this.discarding) return this.retry(this.next as Target);
    // A chunked body over the limit ends the exchange with the error the body reader recorded.
    const e = ctx.error?.reason === 'body_too_large' ? ctx.error : classifyUpstreamError(err);
    const kind = retryKindOf(e.reason);
    if (kind !== undefined) {
      this.upstream.outlier.failure(ctx.target as Target, e.reason);
      if (!this.gotResponse) {
        const next = this.nextTarget(kind);
        if (next !== undefined) return this.retry(next);
      }
    }
    this.finish();
    // The response has started: all we can do is cut it, so the client sees it incomplete.
    if (ctx.res.headersSent) {
      ctx.error = e;
      ctx.res.destroy();
      return;
    }
    fail(this.rt, ctx, e, this.bodyKind !== 'none' && !ctx.req.readableEnded);
  }

  /** The target for a retry after `kind`, or undefined when the policy, the budget or the targets say no. */
  nextTarget(kind: RetryKind | 'status'): Target | undefined {
    const req = this.ctx.req;
    const replayable =
      this.bodyKind === 'none' ||
      (this.ctx.body !== null && this.ctx.bodyComplete) ||
      (this.ctx.body === null && !req.readableDidRead && !req.destroyed);
    this.tried ??= new Set();
    return this.upstream.nextTarget(this.ctx, this.tried, kind, this.ureq.method, replayable, this.deadline);
  }

  retry(next: Target): void {
    this.upstream.retries++;
    this.send(next);
  }

  stopTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  release(): void {
    this.stopTimer();
    this.ctx.abortUpstream = undefined;
    const t = this.ctx.target;
    if (t !== undefined) t.active--;
    if (this.ctx.upstreamMs < 0 && this.ctx.upstreamStart > 0)
      this.ctx.upstreamMs = performance.now() - this.ctx.upstreamStart;
  }

  /** The exchange is over (no more tries). */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.upstream.active--;
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
