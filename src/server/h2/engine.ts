// HTTP/2 (TLS by ALPN, and h2c) on node:http2's core stream API: each 'stream' event becomes one
// H2Request (request.ts) and one H2Responder, and enters the one request path (pipeline/run.ts),
// without the compatibility layer's Http2ServerRequest/Http2ServerResponse pair and its dozen
// listeners per stream. Stream events reach shared functions (`this` is the stream), not per-request
// closures.
//
// The responder holds the head back until the first body bytes, the end, or the next tick, so that
// it can choose the frames: a whole body known at once goes as HEADERS + DATA(END_STREAM), an empty
// answer as HEADERS(END_STREAM), a gRPC head carrying grpc-status (Trailers-Only) as one
// HEADERS(END_STREAM), and only a response that may have trailers (no Content-Length, or a client
// that sent `te: trailers`) waits for them (waitForTrailers).
//
// GATEHOUSE_H2_COMPAT=1 (read once, at start) serves HTTP/2 through the compatibility layer and
// NodeResponder instead, as before this transport existed: kept only to compare the two (bench/h2.ts).
import type { IncomingHttpHeaders } from 'node:http';
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { Reason } from '../../pipeline/errors.ts';
import { chain, type OutHeaders, type Responder } from '../../pipeline/responder.ts';
import { handleRequest } from '../../pipeline/run.ts';
import type { ListenerSlot, Runtime } from '../../pipeline/runtime.ts';
import { H2Request } from './request.ts';

/** Serve HTTP/2 through node:http2's compatibility layer (the comparison in bench/h2.ts). */
export const H2_COMPAT = process.env.GATEHOUSE_H2_COMPAT === '1';

const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = constants;

// respond() only reads its options: one object each, shared.
const END_STREAM = { endStream: true };
const WAIT_FOR_TRAILERS = { waitForTrailers: true };
const NO_OPTIONS = {};
const NO_TRAILERS = {};

/** Connection-specific fields, which HTTP/2 forbids in a response (RFC 9113 §8.2.2); node:http2 throws on them. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'te',
]);

const kResponder = Symbol('gatehouse.h2.responder');
const kSocket = Symbol('gatehouse.h2.socket');

interface TaggedStream extends ServerHttp2Stream {
  [kResponder]: H2Responder;
}

interface TaggedSession extends Http2Session {
  [kSocket]?: Socket;
}

/**
 * Serves the streams of a node:http2 server (Http2Server, Http2SecureServer) on the request path.
 * The compatibility layer is taken off the server first, so that a 'request' listener added for
 * HTTP/1.1 (engine: node on a TLS listener) sees HTTP/1.1 requests only.
 */
export function serveStreams(server: NetServer, rt: Runtime, slot: ListenerSlot): void {
  for (const l of server.listeners('newListener'))
    if ((l as { name?: string }).name === 'setupCompat')
      server.removeListener('newListener', l as (...args: unknown[]) => void);
  server.removeAllListeners('stream');
  // The session's own socket, not its `session.socket` Proxy (every read a trap, and a throw once the
  // session is gone): node:http2 makes the session, and emits 'session', inside its connection
  // listener, which runs right after this one.
  let arriving: Socket | undefined;
  server.prependListener(
    server instanceof TlsServer ? 'secureConnection' : 'connection',
    (socket: Socket) => {
      arriving = socket;
    },
  );
  server.on('session', (session: TaggedSession) => {
    session[kSocket] = arriving;
    arriving = undefined;
  });
  server.on(
    'stream',
    (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) =>
      onStream(rt, slot, stream, headers, raw),
  );
}

function onStream(
  rt: Runtime,
  slot: ListenerSlot,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  raw: string[],
): void {
  // First, whatever comes next: a stream whose session failed before it was announced here is
  // already destroyed with an error, about to be emitted.
  stream.on('error', onStreamError);
  const session = stream.session as TaggedSession | undefined;
  if (session === undefined) return; // the session was torn down before its stream was announced
  const socket = session[kSocket] ?? (session.socket as Socket);
  const expect = headers.expect;
  const req = new CountedH2Request(stream, headers, raw, socket, expect !== undefined && isContinue(expect));
  const res = new H2Responder(stream, req);
  let refuse: Reason | null = null;
  if (req.method === 'CONNECT') refuse = 'method_not_allowed';
  else if (expect !== undefined && !isContinue(expect)) refuse = 'expectation_failed';
  handleRequest(rt, slot, req as never, res, null, refuse);
}

/**
 * An H2Request that counts its body bytes: one stream's share of a connection, which
 * limits.minRequestBodyRate measures (limits/bodyRate.ts bodyBytes). An HTTP/1.x request has its
 * connection to itself and is measured by the socket's bytesRead.
 */
class CountedH2Request extends H2Request {
  received = 0;

  override pushBody(chunk: Buffer): void {
    this.received += chunk.length;
    super.pushBody(chunk);
  }
}

function isContinue(expect: string): boolean {
  return expect.length === 12 && expect.toLowerCase() === '100-continue';
}

function abortedError(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

/** An answer on one HTTP/2 stream, through node:http2's core API (respond, write, end, sendTrailers). */
export class H2Responder implements Responder {
  readonly http2 = true;
  /** A head carrying grpc-status (Trailers-Only) is sent with END_STREAM when no body follows; see forward.ts. */
  readonly endsWithHeaders = true;
  readonly stream: ServerHttp2Stream;
  readonly req: H2Request;
  status = 0;
  ended = false;
  finished = false;
  /** The head written but not yet handed to the stream. */
  #head: OutHeaders | null = null;
  #extra: string[] | null = null;
  #trailers: Record<string, string> | null = null;
  /** The head went out with waitForTrailers: the end is a trailers frame (empty: DATA with END_STREAM). */
  #waitForTrailers = false;
  /** HEAD, 204, 205, 304: node:http2 ends the stream with the head. */
  #noBody = false;
  #onClose: (() => void) | null = null;
  #onFinish: (() => void) | null = null;
  #closed = false;

  constructor(stream: ServerHttp2Stream, req: H2Request) {
    this.stream = stream;
    this.req = req;
    (stream as TaggedStream)[kResponder] = this;
    stream.on('close', onStreamClose);
  }

  get headersSent(): boolean {
    return this.status !== 0;
  }
  get destroyed(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  setHeader(name: string, value: string): void {
    this.#extra ??= [];
    this.#extra.push(name, value);
  }

  writeHead(status: number, headers: OutHeaders): void {
    if (this.status !== 0) return;
    this.#setHead(status, headers);
    // Trailers-Only (gRPC): keep the head for the end, which follows with no body.
    if (headers['grpc-status'] === undefined) process.nextTick(flushHead, this);
  }

  #setHead(status: number, headers: OutHeaders): void {
    this.status = status;
    this.#head = headers;
    this.#noBody =
      (this.stream as { headRequest?: boolean }).headRequest === true ||
      status === 204 ||
      status === 205 ||
      status === 304;
  }

  /** The held head, if it is still held (the next tick after writeHead). */
  flush(): void {
    if (this.#head !== null) this.#sendHead(false, false);
  }

  write(chunk: Buffer): boolean {
    const stream = this.stream;
    if (this.status === 0) this.#setHead(200, {});
    if (this.#head !== null && !this.#sendHead(false, false)) return false;
    if (stream.destroyed || stream.closed) return false;
    if (this.#noBody || chunk.length === 0) return true;
    return stream.write(chunk);
  }

  end(chunk?: Buffer | string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.status === 0) this.#setHead(200, {});
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const body = chunk === undefined || chunk.length === 0 || this.#noBody ? undefined : chunk;
    if (this.#head !== null && !this.#sendHead(body === undefined && this.#trailers === null, true)) return;
    if (!stream.writableEnded) {
      if (body === undefined) stream.end();
      else stream.end(body);
    }
    this.finished = true;
    const f = this.#onFinish;
    this.#onFinish = null;
    if (f !== null) f();
    const req = this.req;
    if (!req.complete) {
      // Answered before the request body ended: it is not wanted any more. Ask the client to stop
      // sending (RST_STREAM NO_ERROR once the answer is out, RFC 9113 §8.1), unless trailers are still
      // to go: then its data is read and dropped until it ends.
      req.abortBody(abortedError());
      if (!this.#waitForTrailers) stream.close(NGHTTP2_NO_ERROR);
    }
  }

  trailers(t: Record<string, string>): boolean {
    if (this.ended) return false;
    // Before the head has gone out, it will be sent with waitForTrailers; after, only if it was.
    if (this.#head === null && this.status !== 0 && !this.#waitForTrailers) return false;
    this.#trailers = t;
    return true;
  }

  /** The trailers to send when the stream asks for them. */
  trailersToSend(): Record<string, string> {
    return this.#trailers ?? NO_TRAILERS;
  }

  onDrain(fn: () => void): void {
    this.stream.once('drain', fn);
  }

  onClose(fn: () => void): void {
    if (this.#closed) return fn();
    this.#onClose = chain(this.#onClose, fn);
  }

  onFinish(fn: () => void): void {
    if (this.finished) return fn();
    this.#onFinish = chain(this.#onFinish, fn);
  }

  /** Cuts the response: the client sees the stream reset, never a complete answer. */
  destroy(): void {
    const stream = this.stream;
    if (!stream.destroyed && !stream.closed) stream.close(NGHTTP2_INTERNAL_ERROR);
  }

  /** The stream has closed (answered, reset by the client, or its session gone): exactly once. */
  gone(): void {
    if (this.#closed) return;
    const req = this.req;
    if (!req.complete) req.abortBody(abortedError());
    this.#closed = true;
    const f = this.#onClose;
    this.#onClose = null;
    if (f !== null) f();
  }

  /**
   * Hands the held head to the stream; false when the stream is gone or refused it. `atEnd`: the
   * whole response is known (end()), so whether trailers follow is too; before that they may come
   * when the body's length is not known, or when the client said it takes them (`te: trailers`).
   */
  #sendHead(endStream: boolean, atEnd: boolean): boolean {
    const headers = this.#head as OutHeaders;
    this.#head = null;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return false;
    let options: object = NO_OPTIONS;
    if (endStream || this.#noBody) options = END_STREAM;
    else if (
      this.#trailers !== null ||
      (!atEnd && (headers['content-length'] === undefined || this.req.headers.te === 'trailers'))
    ) {
      options = WAIT_FOR_TRAILERS;
      this.#waitForTrailers = true;
      stream.on('wantTrailers', onWantTrailers);
    }
    try {
      stream.respond(headerList(this.status, headers, this.#extra, false) as never, options);
    } catch {
      // A field node:http2 refuses (a name that is not a token, a connection header in capitals):
      // once more with the names lowered and such fields dropped, else the stream is reset.
      try {
        stream.respond(headerList(this.status, headers, this.#extra, true) as never, options);
      } catch {
        this.#waitForTrailers = false;
        if (!stream.destroyed && !stream.closed) stream.close(NGHTTP2_INTERNAL_ERROR);
        return false;
      }
    }
    return true;
  }
}

/** The flat [name, value, ...] list for respond(): :status, the extra headers the head does not set, the head. */
function headerList(
  status: number,
  headers: OutHeaders,
  extra: string[] | null,
  strict: boolean,
): (string | number | string[])[] {
  const list: (string | number | string[])[] = [':status', status];
  if (extra !== null)
    for (let i = 0; i < extra.length; i += 2)
      if (headers[extra[i]] === undefined) list.push(extra[i], extra[i + 1]);
  for (const key in headers) {
    const name = strict ? key.toLowerCase() : key;
    const v = headers[key];
    if (v === undefined || CONNECTION_SPECIFIC.has(name)) continue;
    if (strict && !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) continue;
    list.push(name, v);
  }
  return list;
}

// Stream listeners shared by every responder: `this` is the stream.

function flushHead(res: H2Responder): void {
  res.flush();
}

function onStreamClose(this: TaggedStream): void {
  this[kResponder].gone();
}

function onStreamError(): void {
  // A reset by the client; 'close' follows, and the responder reports it.
}

function onWantTrailers(this: TaggedStream): void {
  if (this.destroyed || this.closed) return;
  const t = this[kResponder].trailersToSend();
  try {
    this.sendTrailers(t);
  } catch {
    // A field HTTP/2 does not allow in trailers: end the stream without them.
    this.sendTrailers(NO_TRAILERS);
  }
}
