// A request as our HTTP/2 transport hands it to the request path: the members of node:http's
// IncomingMessage that the pipeline reads, built straight from a node:http2 stream's 'stream' event
// (no compatibility-layer Http2ServerRequest), on a Readable that carries the body with
// backpressure: when the pipeline stops reading, the stream stops being read, so its flow-control
// window is not replenished and the client stops sending.
import type { IncomingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { BodyStream } from '../body.ts';

/** The stream's own fields this module adds; set once per stream, so every stream keeps one shape. */
interface Tagged extends ServerHttp2Stream {
  [kRequest]: H2Request;
}

const kRequest = Symbol('gatehouse.h2.request');

const CONTINUE = { ':status': 100 };

export class H2Request extends BodyStream {
  readonly method: string;
  /** :path; undefined only for CONNECT, which the transport refuses before the path reads it. */
  readonly url: string;
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  readonly httpVersion = '2.0';
  /** node:http2's header object: pseudo-headers included (accept.ts reads `:authority`). */
  readonly headers: IncomingHttpHeaders;
  /** Flat [name, value, ...] as received, pseudo-headers included (as the compatibility layer has it). */
  readonly rawHeaders: string[];
  /** The session's socket (remoteAddress, and the TLS socket for tlsSocketOf). */
  readonly socket: Socket;
  /** The HTTP/2 stream: tlsSocketOf reads stream.session.socket, forward.ts stream.endAfterHeaders. */
  readonly stream: ServerHttp2Stream;
  /** Send 100 Continue when the body is first read. */
  #expectContinue: boolean;
  /** Listening to the stream's 'data' (after the first _read). */
  #reading = false;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    raw: string[],
    socket: Socket,
    expectContinue: boolean,
  ) {
    super();
    this.stream = stream;
    this.headers = headers;
    this.rawHeaders = raw;
    this.socket = socket;
    this.method = headers[':method'] as string;
    this.url = headers[':path'] as string;
    this.#expectContinue = expectContinue;
    (stream as Tagged)[kRequest] = this;
    if (stream.endAfterHeaders) {
      this.complete = true;
      this.push(null);
    }
  }

  override _read(): void {
    const stream = this.stream;
    if (this.#reading) {
      stream.resume();
      return;
    }
    this.#reading = true;
    if (this.#expectContinue) {
      this.#expectContinue = false;
      if (!stream.headersSent && !stream.destroyed && !stream.closed) stream.additionalHeaders(CONTINUE);
    }
    stream.on('data', onStreamData);
    stream.on('end', onStreamEnd);
  }

  /** A body chunk from the stream. */
  pushBody(chunk: Buffer): void {
    this.bodyTimer?.refresh();
    if (!this.push(chunk)) this.stream.pause();
  }

  /** The client ended the stream. */
  endBody(): void {
    this.complete = true;
    this.clearBodyTimer();
    if (!this.destroyed) this.push(null);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.clearBodyTimer();
    // Whoever read the body has stopped: let the stream flow again so that its data is dropped
    // and the flow-control window keeps moving (the answer, when it ends, resets the stream).
    if (this.#reading && !this.complete) {
      const stream = this.stream;
      stream.off('data', onStreamData);
      if (!stream.destroyed) stream.resume();
    }
    cb(err);
  }
}

// Stream listeners shared by every request: `this` is the stream, the request is found on it.

function onStreamData(this: Tagged, chunk: Buffer): void {
  this[kRequest].pushBody(chunk);
}

function onStreamEnd(this: Tagged): void {
  this[kRequest].endBody();
}
