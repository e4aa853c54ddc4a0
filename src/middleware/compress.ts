// `compress`: compresses responses with zstd, brotli or gzip, by the client's Accept-Encoding
// (docs/compression.md).
//
// The middleware has one hook, respond(): it reads Accept-Encoding once (negotiation is remembered
// per header value) and puts a CompressFilter in front of the responder. The filter decides at
// writeHead, from the head alone, whatever answer it is (the upstream's, a cache hit, an error page):
//
//   untouched   not 2xx with content (1xx, 204, 205, 206, 304 and every non-2xx), already encoded,
//               Cache-Control: no-transform, a Content-Range, a type not in `types`, or a
//               Content-Length of 0 or under `minSize`. None of these depends on the request, so
//               no Vary either.
//   Vary only   compressible, but not for this request: no acceptable coding in Accept-Encoding
//               (or none at all), or a request with Cache-Control: no-transform. Caches must know
//               that another Accept-Encoding gets another answer.
//   compressed  Content-Encoding set, Content-Length (and Accept-Ranges, and digests of the
//               uncompressed bytes) dropped, Vary: accept-encoding merged, a strong ETag made weak.
//               A HEAD request gets that head and no body work.
//
// A compressed body goes one of two ways:
//   - sync: a body of known length up to `syncMax` (16 KiB, at settings fast enough for it) that
//     arrives whole in end(chunk), as small upstream responses and local answers do, is compressed
//     in one call on the spot and sent with its Content-Length: no stream, no thread-pool trip. The
//     head is held until the body comes (our HTTP/1.1 and HTTP/2 responders hold it too); a body
//     that comes in pieces after all goes the stream way.
//   - stream: a node:zlib stream flushed after every write (Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH,
//     ZSTD_e_flush), so what the upstream sent reaches the client now, not when the compressor's
//     window fills (server-sent events, slow producers). Backpressure both ways: write() returns
//     false while the compressor's input is full and onDrain waits for it; output the client's
//     responder refuses pauses the compressor until that responder drains. At most the two
//     64 KiB stream buffers and the compressor's window are held, whatever the body's size.
//
// The head passed to writeHead is never changed: a new object goes out (a cache behind this filter
// hands over the head it stores). Header names are lower case, as everywhere on the request path.
import type { Transform } from 'node:stream';
import {
  brotliCompressSync,
  constants,
  createBrotliCompress,
  createGzip,
  createZstdCompress,
  gzipSync,
  zstdCompressSync,
} from 'node:zlib';
import type { CompressConfig } from '../config/schema.ts';
import { EncodingNegotiator } from '../http/acceptEncoding.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { ProxyError } from '../pipeline/errors.ts';
import type { OutHeaders, Responder } from '../pipeline/responder.ts';
import { ResponderFilter } from '../pipeline/responder.ts';
import type { MiddlewareKind } from './types.ts';

/** Largest body compressed in one synchronous call, at settings that do it in well under a millisecond. */
const SYNC_MAX = 16 * 1024;
const EMPTY = Buffer.alloc(0);
/** `no-transform` among Cache-Control directives. */
const NO_TRANSFORM = /(?:^|,)[ \t]*no-transform[ \t]*(?:,|$)/i;

/** What the filter does with a response: its head is the only input. */
const UNTOUCHED = 0;
const COMPRESSIBLE_BINARY = 1;
const COMPRESSIBLE_TEXT = 2;

/** Fields about the uncompressed bytes, wrong once they are compressed. */
const DROPPED = new Set([
  'content-length',
  'content-encoding',
  'accept-ranges',
  'content-md5',
  'digest',
  'content-digest',
  'repr-digest',
]);

/** One middleware's compiled settings: the type matcher, the negotiator and the codec options. */
class Settings {
  readonly negotiator: EncodingNegotiator;
  readonly minSize: number;
  /** Exact media types (`application/json`) and whole types (`text` for `text/*`), lower case. */
  readonly exact: Set<string>;
  readonly major: Set<string>;
  readonly gzipLevel: number;
  readonly brotliQuality: number;
  readonly zstdLevel: number;
  /** Per coding, the largest body compressed synchronously (0: always a stream). */
  readonly syncGzip: number;
  readonly syncBr: number;
  readonly syncZstd: number;
  readonly zstdParams: Record<number, number>;

  constructor(config: CompressConfig) {
    this.negotiator = new EncodingNegotiator(config.encodings);
    this.minSize = config.minSize;
    this.exact = new Set();
    this.major = new Set();
    for (const t of config.types) {
      const lower = t.toLowerCase();
      if (lower.endsWith('/*')) this.major.add(lower.slice(0, -2));
      else this.exact.add(lower);
    }
    this.gzipLevel = config.gzipLevel;
    this.brotliQuality = config.brotliQuality;
    this.zstdLevel = config.zstdLevel;
    // Measured on 16 KiB of JSON: gzip at any level and zstd up to 9 take 0.1–0.4 ms, brotli up to
    // quality 7 about 0.5 ms; brotli 9–11 and zstd 12+ take milliseconds even for 1 KiB, so they
    // always run on the thread pool.
    this.syncGzip = SYNC_MAX;
    this.syncBr = config.brotliQuality <= 7 ? SYNC_MAX : 0;
    this.syncZstd = config.zstdLevel <= 9 ? SYNC_MAX : 0;
    this.zstdParams = { [constants.ZSTD_c_compressionLevel]: config.zstdLevel };
  }

  /** COMPRESSIBLE_TEXT, COMPRESSIBLE_BINARY or UNTOUCHED, by Content-Type (parameters ignored). */
  kindOf(ct: string | string[] | number | undefined): number {
    if (ct === undefined) return UNTOUCHED;
    let t = typeof ct === 'string' ? ct : String(Array.isArray(ct) ? ct[0] : ct);
    const semi = t.indexOf(';');
    if (semi >= 0) t = t.slice(0, semi);
    t = t.trim().toLowerCase();
    const slash = t.indexOf('/');
    if (slash <= 0) return UNTOUCHED;
    const major = t.slice(0, slash);
    if (!this.exact.has(t) && !this.major.has(major)) return UNTOUCHED;
    if (major === 'text') return COMPRESSIBLE_TEXT;
    // gRPC has its own message compression, and its clients do not decode a content coding.
    if (t.startsWith('application/grpc')) return UNTOUCHED;
    return t.endsWith('json') || t.endsWith('xml') || t.endsWith('javascript')
      ? COMPRESSIBLE_TEXT
      : COMPRESSIBLE_BINARY;
  }

  syncMax(coding: string): number {
    return coding === 'gzip' ? this.syncGzip : coding === 'br' ? this.syncBr : this.syncZstd;
  }

  /** A compressor stream that flushes after every write. `length`: the body's size, or -1. */
  stream(coding: string, length: number, text: boolean): Transform {
    if (coding === 'gzip') return createGzip({ level: this.gzipLevel, flush: constants.Z_SYNC_FLUSH });
    if (coding === 'br')
      return createBrotliCompress({
        flush: constants.BROTLI_OPERATION_FLUSH,
        params: this.brotliParams(length, text),
      });
    return createZstdCompress({
      flush: constants.ZSTD_e_flush,
      params: this.zstdParams,
      pledgedSrcSize: length >= 0 ? length : undefined,
    });
  }

  /** The whole body compressed in one call. */
  compress(coding: string, body: Buffer, text: boolean): Buffer {
    if (coding === 'gzip') return gzipSync(body, { level: this.gzipLevel });
    if (coding === 'br') return brotliCompressSync(body, { params: this.brotliParams(body.length, text) });
    return zstdCompressSync(body, { params: this.zstdParams, pledgedSrcSize: body.length });
  }

  brotliParams(length: number, text: boolean): Record<number, number> {
    const p: Record<number, number> = {
      [constants.BROTLI_PARAM_QUALITY]: this.brotliQuality,
      [constants.BROTLI_PARAM_MODE]: text ? constants.BROTLI_MODE_TEXT : constants.BROTLI_MODE_GENERIC,
    };
    if (length >= 0) p[constants.BROTLI_PARAM_SIZE_HINT] = length;
    return p;
  }
}

/** What the filter is doing with the body. */
const PASS = 0;
/** Compressing; the head is held for a body that may come whole (sync). */
const HOLD = 1;
/** Compressing; the head has gone to `outer`, the body goes through a stream (made at the first bytes). */
const STREAM = 2;

type TaggedStream = Transform & { [kFilter]: CompressFilter };
const kFilter = Symbol('compressFilter');

/** One response's filter. */
class CompressFilter extends ResponderFilter {
  readonly #s: Settings;
  readonly #ctx: RequestContext;
  /** The coding negotiated from the request; null: identity. */
  readonly #coding: string | null;
  readonly #head: boolean;
  #mode = PASS;
  #status = 0;
  #ended = false;
  #text = false;
  /** The uncompressed body's length when known, else -1. */
  #length = -1;
  /** HOLD: the head to send, and its `close`. */
  #held: OutHeaders | null = null;
  #close: boolean | undefined = undefined;
  /** HOLD: trailers that came before the head went out. */
  #trailers: Record<string, string> | null = null;
  #z: TaggedStream | null = null;
  /** Compressed bytes handed to `outer`. */
  #out = 0;
  /** Waiting for `outer` to drain, the compressor paused. */
  #waiting = false;
  #resume: (() => void) | null = null;

  constructor(outer: Responder, s: Settings, ctx: RequestContext, coding: string | null, head: boolean) {
    super(outer);
    this.#s = s;
    this.#ctx = ctx;
    this.#coding = coding;
    this.#head = head;
  }

  override get headersSent(): boolean {
    return this.#status !== 0 || this.outer.headersSent;
  }
  override get ended(): boolean {
    return this.#ended || this.outer.ended;
  }
  override get status(): number {
    const s = this.outer.status;
    return s !== 0 ? s : this.#status;
  }

  override writeHead(status: number, headers: OutHeaders, close?: boolean): void {
    if (this.#status !== 0) return;
    this.#status = status;
    const kind = this.#inspect(status, headers);
    if (kind === UNTOUCHED) return this.outer.writeHead(status, headers, close);
    const coding = this.#coding;
    if (coding === null) return this.outer.writeHead(status, withVary(headers), close);
    const out = compressedHead(headers, coding);
    if (this.#head) return this.outer.writeHead(status, out, close);
    this.#text = kind === COMPRESSIBLE_TEXT;
    if (this.#length >= 0 && this.#length <= this.#s.syncMax(coding)) {
      this.#mode = HOLD;
      this.#held = out;
      this.#close = close;
      return;
    }
    this.#mode = STREAM;
    this.outer.writeHead(status, out, close);
  }

  /** UNTOUCHED, or the kind of compressible content; records the body's length. */
  #inspect(status: number, h: OutHeaders): number {
    if (status < 200 || status > 299 || status === 204 || status === 205 || status === 206) return UNTOUCHED;
    const ce = h['content-encoding'];
    if (ce !== undefined && !(typeof ce === 'string' && ce.trim().toLowerCase() === 'identity'))
      return UNTOUCHED;
    if (h['content-range'] !== undefined) return UNTOUCHED;
    const cl = h['content-length'];
    if (cl !== undefined) {
      const n = Number(cl);
      if (!(n > 0 && n >= this.#s.minSize)) return UNTOUCHED;
      this.#length = n;
    }
    const kind = this.#s.kindOf(h['content-type']);
    if (kind === UNTOUCHED) return UNTOUCHED;
    const cc = h['cache-control'];
    if (cc !== undefined && NO_TRANSFORM.test(typeof cc === 'string' ? cc : String(cc))) return UNTOUCHED;
    return kind;
  }

  override write(chunk: Buffer): boolean {
    const mode = this.#mode;
    if (mode === PASS) return this.outer.write(chunk);
    if (mode === HOLD) {
      if (chunk.length === 0) return true;
      this.#release();
    }
    const z = this.#z ?? this.#start(this.#length);
    if (z.destroyed) return false;
    if (chunk.length === 0) return !z.writableNeedDrain;
    return z.write(chunk);
  }

  override end(chunk?: Buffer | string): void {
    if (this.#mode === PASS) return this.outer.end(chunk);
    if (this.#ended) return;
    this.#ended = true;
    const body = chunk === undefined ? EMPTY : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const z = this.#z;
    if (z === null && body.length <= this.#s.syncMax(this.#coding as string)) {
      // The whole body, small: one call, and when the head is still ours, a Content-Length.
      let out: Buffer;
      try {
        out = this.#s.compress(this.#coding as string, body, this.#text);
      } catch (err) {
        return this.#fail(err);
      }
      if (this.#mode === HOLD) {
        const head = this.#held as OutHeaders;
        this.#held = null;
        if (this.#trailers === null) head['content-length'] = String(out.length);
        this.outer.writeHead(this.#status, head, this.#close);
        if (this.#trailers !== null) this.outer.trailers(this.#trailers);
      }
      this.#ctx.bytesOut = out.length;
      this.outer.end(out);
      return;
    }
    if (this.#mode === HOLD) this.#release();
    // The stream's length hint: the whole body is here when no stream was needed before.
    const s = z ?? this.#start(body.length);
    if (s.destroyed) return;
    if (body.length > 0) s.end(body);
    else s.end();
  }

  override trailers(t: Record<string, string>): boolean {
    if (this.#mode === HOLD) {
      this.#trailers = t;
      return true;
    }
    // The responders keep trailers until the end, which here is the compressor's end.
    return this.outer.trailers(t);
  }

  override onDrain(fn: () => void): void {
    const z = this.#z;
    if (z !== null && this.#mode !== PASS) z.once('drain', fn);
    else this.outer.onDrain(fn);
  }

  override destroy(): void {
    const z = this.#z;
    if (z !== null && !z.destroyed) z.destroy();
    this.outer.destroy();
  }

  /** HOLD → STREAM: the body comes in pieces after all; the head goes out without a length. */
  #release(): void {
    this.#mode = STREAM;
    const head = this.#held as OutHeaders;
    this.#held = null;
    this.outer.writeHead(this.#status, head, this.#close);
    if (this.#trailers !== null) this.outer.trailers(this.#trailers);
  }

  /** The compressor, at the first body bytes; `length` is the whole body's, or -1. */
  #start(length: number): TaggedStream {
    const z = this.#s.stream(this.#coding as string, length, this.#text) as TaggedStream;
    z[kFilter] = this;
    this.#z = z;
    this.#resume = () => {
      this.#waiting = false;
      z.resume();
    };
    z.on('data', onZData);
    z.on('end', onZEnd);
    z.on('error', onZError);
    // The client gone (or the answer complete): the compressor has nothing more to do.
    const outer = this.outer;
    if (outer.destroyed) z.destroy();
    else
      outer.onClose(() => {
        if (!z.destroyed && !z.readableEnded) z.destroy();
      });
    return z;
  }

  /** Compressed bytes out; a full responder pauses the compressor until it drains. */
  pushOut(z: Transform, chunk: Buffer): void {
    this.#out += chunk.length;
    const outer = this.outer;
    if (outer.write(chunk) || this.#waiting || outer.destroyed) return;
    this.#waiting = true;
    z.pause();
    outer.onDrain(this.#resume as () => void);
  }

  /** The compressor has written its last bytes: the response ends (with its trailers, if any). */
  done(): void {
    if (this.outer.destroyed) return;
    this.#ctx.bytesOut = this.#out;
    this.outer.end();
  }

  /** A compressor failure cuts the response: the client sees it incomplete. */
  fail(err: unknown): void {
    this.#fail(err);
  }

  #fail(err: unknown): void {
    const ctx = this.#ctx;
    ctx.error ??= new ProxyError('internal', 'compression failed', { cause: err, source: 'internal' });
    const z = this.#z;
    if (z !== null && !z.destroyed) z.destroy();
    this.outer.destroy();
  }
}

// The compressor's listeners, shared by every filter: `this` is the stream.

function onZData(this: TaggedStream, chunk: Buffer): void {
  this[kFilter].pushOut(this, chunk);
}

function onZEnd(this: TaggedStream): void {
  this[kFilter].done();
}

function onZError(this: TaggedStream, err: Error): void {
  this[kFilter].fail(err);
}

/** The head with `accept-encoding` in Vary (unless Vary already covers it): a new object when it changes. */
function withVary(headers: OutHeaders): OutHeaders {
  const vary = headers.vary;
  const merged = mergeVary(vary);
  if (merged === vary) return headers;
  return { ...headers, vary: merged };
}

/** Vary with `accept-encoding` added: the same value when it has it already, or is `*`. */
function mergeVary(vary: string | string[] | number | undefined): string | string[] {
  if (vary === undefined) return 'accept-encoding';
  const list = Array.isArray(vary) ? vary : [String(vary)];
  for (const v of list)
    for (const name of v.split(',')) {
      const n = name.trim().toLowerCase();
      if (n === '*' || n === 'accept-encoding') return vary as string | string[];
    }
  if (Array.isArray(vary)) return [...vary, 'accept-encoding'];
  const s = String(vary).trim();
  return s === '' ? 'accept-encoding' : `${s}, accept-encoding`;
}

/** The head of the compressed response: a new object, the given one unchanged. */
function compressedHead(headers: OutHeaders, coding: string): OutHeaders {
  const out: OutHeaders = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || DROPPED.has(name)) continue;
    if (name === 'etag') out.etag = weakEtag(v);
    else if (name === 'vary') out.vary = mergeVary(v);
    else out[name] = v;
  }
  out['content-encoding'] = coding;
  if (out.vary === undefined) out.vary = 'accept-encoding';
  return out;
}

/** `"x"` → `W/"x"`: the compressed bytes are not the identity bytes a strong validator names. */
function weakEtag(v: string | string[] | number): string | string[] | number {
  return typeof v === 'string' && v.startsWith('"') ? `W/${v}` : v;
}

/** The request asked intermediaries not to transform the content (RFC 9111 §5.2.1.6). */
function noTransform(cc: string | string[] | undefined): boolean {
  return cc !== undefined && NO_TRANSFORM.test(typeof cc === 'string' ? cc : cc.join(','));
}

export const compress: MiddlewareKind<CompressConfig> = {
  create(name, config) {
    const s = new Settings(config);
    const negotiator = s.negotiator;
    return {
      name,
      respond(ctx, outer) {
        const h = ctx.req.headers;
        let coding = negotiator.pick(h['accept-encoding']);
        if (coding !== null && noTransform(h['cache-control'])) coding = null;
        return new CompressFilter(outer, s, ctx, coding, ctx.req.method === 'HEAD');
      },
    };
  },
};
