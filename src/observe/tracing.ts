// W3C Trace Context propagation and OpenTelemetry spans, exported as OTLP/HTTP JSON to a collector.
// A request continues the trace in its `traceparent` (keeping the caller's sampling decision) or
// starts one (sampled at `sampleRate`); it gets a SERVER span, each upstream try a CLIENT span
// whose id goes upstream in `traceparent`, with `tracestate` passed through. Spans are batched and
// posted every second or every `maxBatch` spans; a collector that is down costs dropped spans, never
// a request. With tracing off there is no Tracer and the pipeline does nothing more than a null check.
import { randomFillSync } from 'node:crypto';
import { request } from 'undici';
import type { RequestContext } from '../pipeline/context.ts';

export interface TracingConfig {
  endpoint: string;
  serviceName: string;
  sampleRate: number;
  headers: Record<string, string>;
  maxBatch: number;
  flushInterval: number;
}

export interface TraceState {
  readonly traceId: string;
  /** The SERVER span of this request. */
  readonly spanId: string;
  /** The caller's span, or '' when this request started the trace. */
  readonly parentSpanId: string;
  readonly sampled: boolean;
  readonly tracestate: string | undefined;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The parts of a valid version-00 traceparent, or undefined (then a new trace starts). */
export function parseTraceparent(
  v: string | undefined,
): { traceId: string; spanId: string; flags: number } | undefined {
  if (v === undefined) return undefined;
  const m = TRACEPARENT.exec(v.trim());
  if (m === null || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined;
  return { traceId: m[1], spanId: m[2], flags: Number.parseInt(m[3], 16) };
}

/** Random ids from a pooled buffer: one randomFillSync per 512 ids rather than one per id. */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;
function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const s = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return s;
}

type Attr = { key: string; value: { stringValue: string } | { intValue: string } };

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Attr[];
  status: { code: number; message?: string };
}

const SERVER = 2;
const CLIENT = 3;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

const nanos = (t: number) => String(BigInt(Math.round((performance.timeOrigin + t) * 1000)) * 1000n);
const str = (key: string, v: string): Attr => ({ key, value: { stringValue: v } });
const int = (key: string, v: number): Attr => ({ key, value: { intValue: String(v) } });

export class Tracer {
  readonly config: TracingConfig;
  #batch: Span[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inflight = new Set<Promise<void>>();
  exported = 0;
  dropped = 0;

  constructor(config: TracingConfig) {
    this.config = config;
  }

  /** The trace this request belongs to: continued from its traceparent, or new. */
  begin(ctx: RequestContext): TraceState {
    const h = ctx.req.headers;
    const parent = parseTraceparent(h.traceparent as string | undefined);
    const ts = h.tracestate;
    if (parent !== undefined)
      return {
        traceId: parent.traceId,
        spanId: randomHex(8),
        parentSpanId: parent.spanId,
        sampled: (parent.flags & 1) === 1,
        tracestate: typeof ts === 'string' ? ts : undefined,
      };
    return {
      traceId: randomHex(16),
      spanId: randomHex(8),
      parentSpanId: '',
      sampled: Math.random() < this.config.sampleRate,
      tracestate: undefined,
    };
  }

  /** A new span id for an upstream try, and the traceparent that carries it. */
  child(trace: TraceState): { spanId: string; traceparent: string } {
    const spanId = randomHex(8);
    return { spanId, traceparent: `00-${trace.traceId}-${spanId}-${trace.sampled ? '01' : '00'}` };
  }

  /** The CLIENT span of one upstream try. */
  attemptSpan(
    ctx: RequestContext,
    spanId: string,
    start: number,
    end: number,
    status: number,
    error: string | undefined,
  ): void {
    const trace = ctx.trace;
    if (trace === null || !trace.sampled) return;
    const t = ctx.target;
    const attributes = [
      str('http.request.method', ctx.req.method ?? ''),
      int('gatehouse.attempt', ctx.attempts),
    ];
    if (t !== undefined) {
      attributes.push(
        str('server.address', t.url.hostname),
        int('server.port', Number(t.url.port || 80)),
        str('url.full', `${t.id}${ctx.path}`),
      );
    }
    if (status > 0) attributes.push(int('http.response.status_code', status));
    if (error !== undefined) attributes.push(str('error.type', error));
    this.#add({
      traceId: trace.traceId,
      spanId,
      parentSpanId: trace.spanId,
      name: ctx.req.method ?? 'HTTP',
      kind: CLIENT,
      startTimeUnixNano: nanos(start),
      endTimeUnixNano: nanos(end),
      attributes,
      status:
        error !== undefined || status >= 500
          ? { code: STATUS_ERROR, message: error }
          : { code: STATUS_UNSET },
    });
  }

  /** The SERVER span of the request, when it is done. */
  requestSpan(ctx: RequestContext, end: number): void {
    const trace = ctx.trace;
    if (trace === null || !trace.sampled) return;
    const route = ctx.route;
    const attributes = [
      str('http.request.method', ctx.req.method ?? ''),
      str('url.path', ctx.path),
      str('url.scheme', ctx.scheme),
      str('server.address', ctx.host),
      str('client.address', ctx.clientIp),
      str('network.protocol.version', ctx.req.httpVersion),
      str('gatehouse.request_id', ctx.id),
      str('gatehouse.listener', ctx.listener),
      int('http.response.status_code', ctx.status),
    ];
    if (route !== undefined)
      attributes.push(
        str('http.route', route.name),
        str('gatehouse.upstream', ctx.upstream?.name ?? route.backend),
      );
    const reason = ctx.error?.reason;
    if (reason !== undefined) attributes.push(str('error.type', reason));
    const span: Span = {
      traceId: trace.traceId,
      spanId: trace.spanId,
      name: route === undefined ? (ctx.req.method ?? 'HTTP') : `${ctx.req.method} ${route.name}`,
      kind: SERVER,
      startTimeUnixNano: nanos(ctx.start),
      endTimeUnixNano: nanos(end),
      attributes,
      status:
        ctx.status >= 500 || ctx.status === 0
          ? { code: STATUS_ERROR, message: reason }
          : { code: STATUS_UNSET },
    };
    if (trace.parentSpanId !== '') span.parentSpanId = trace.parentSpanId;
    this.#add(span);
  }

  #add(span: Span): void {
    this.#batch.push(span);
    if (this.#batch.length >= this.config.maxBatch) void this.flush();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.flush(), this.config.flushInterval);
      this.#timer.unref();
    }
  }

  /** Posts the spans gathered so far. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#batch.length === 0) return Promise.all(this.#inflight).then(() => {});
    const spans = this.#batch;
    this.#batch = [];
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [str('service.name', this.config.serviceName)] },
          scopeSpans: [{ scope: { name: 'gatehouse' }, spans }],
        },
      ],
    });
    const p = request(this.config.endpoint, {
      method: 'POST',
      headers: { ...this.config.headers, 'content-type': 'application/json' },
      body,
      headersTimeout: 5000,
      bodyTimeout: 5000,
    })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) this.exported += spans.length;
        else this.dropped += spans.length;
      })
      .catch(() => {
        this.dropped += spans.length;
      })
      .finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
    return Promise.all(this.#inflight).then(() => {});
  }
}
