// The responder: the one small interface through which the request path answers a client, whatever
// the transport. The pipeline (run.ts), the upstream exchange (forward.ts), the tunnel (tunnel.ts)
// and the one error writer (respond.ts) only ever talk to a Responder; each transport brings its own:
//
//   H1Responder      our HTTP/1.1 engine's socket (server/h1/engine.ts)
//   H2Responder      an HTTP/2 stream of node:http2's core API (server/h2/engine.ts)
//   NodeResponder    node:http's ServerResponse (engine: node), or an HTTP/2 compatibility-layer
//                    response (GATEHOUSE_H2_COMPAT=1, for the benchmark)
//   SocketResponder  a raw socket: upgrade requests (before and instead of a 101) and requests too
//                    broken to reach the pipeline
//
// A new transport (the HTTP/1.1 engine of our own, TCP) plugs in by implementing this interface.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';

export type OutHeaders = Record<string, string | string[] | number>;

export interface Responder {
  /** HTTP/2 streams have no Connection header and may always carry trailers. */
  readonly http2: boolean;
  /** The status line has been written. */
  readonly headersSent: boolean;
  /** The connection is gone, or the response was cut. */
  readonly destroyed: boolean;
  /** end() has been called. */
  readonly ended: boolean;
  /** The whole response was handed to the transport (a tunnel: its head was). */
  readonly finished: boolean;
  /** The status written, 0 before. */
  readonly status: number;
  /** A header for whatever head is written next (HSTS on every answer). */
  setHeader(name: string, value: string): void;
  /** Writes the head; `close` ends the connection after this response (HTTP/1.1). */
  writeHead(status: number, headers: OutHeaders, close?: boolean): void;
  /** false: the transport's buffer is full, wait for onDrain. */
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer | string): void;
  /** Trailers for a response that can carry them (HTTP/2, or chunked HTTP/1.1); false when it cannot. */
  trailers(t: Record<string, string>): boolean;
  onDrain(fn: () => void): void;
  /** Exactly once, when the response is done or the client is gone. */
  onClose(fn: () => void): void;
  /** Once, when the whole response has been handed to the transport. */
  onFinish(fn: () => void): void;
  destroy(): void;
}

type NodeRes = ServerResponse | Http2ServerResponse;

/** One callback slot that takes more: the usual case (one) costs no closure. */
export function chain(prev: (() => void) | null, fn: () => void): () => void {
  if (prev === null) return fn;
  return () => {
    prev();
    fn();
  };
}

/** An HTTP/1.1 ServerResponse or an HTTP/2 compatibility-layer response. */
export class NodeResponder implements Responder {
  readonly res: NodeRes;
  readonly http2: boolean;

  constructor(res: NodeRes, http2: boolean) {
    this.res = res;
    this.http2 = http2;
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }
  get destroyed(): boolean {
    return this.res.destroyed;
  }
  get ended(): boolean {
    return this.res.writableEnded;
  }
  get finished(): boolean {
    return this.res.writableFinished;
  }
  get status(): number {
    return this.res.headersSent ? this.res.statusCode : 0;
  }
  setHeader(name: string, value: string): void {
    this.res.setHeader(name, value);
  }
  writeHead(status: number, headers: OutHeaders, close = false): void {
    const res = this.res;
    if (close && !this.http2) {
      headers.connection = 'close';
      (res as ServerResponse).shouldKeepAlive = false;
    }
    (res as ServerResponse).writeHead(status, headers as OutgoingHttpHeaders);
  }
  write(chunk: Buffer): boolean {
    return (this.res as ServerResponse).write(chunk);
  }
  end(chunk?: Buffer | string): void {
    if (chunk === undefined) this.res.end();
    else this.res.end(chunk);
  }
  trailers(t: Record<string, string>): boolean {
    const res = this.res;
    if (!this.http2 && !(res as ServerResponse).chunkedEncoding) return false;
    res.addTrailers(t);
    return true;
  }
  onDrain(fn: () => void): void {
    this.res.once('drain', fn);
  }
  onClose(fn: () => void): void {
    // Like the other responders: a callback registered after the close runs at once.
    if ((this.res as { closed?: boolean }).closed === true) fn();
    else this.res.once('close', fn);
  }
  onFinish(fn: () => void): void {
    this.res.once('finish', fn);
  }
  destroy(): void {
    this.res.destroy();
  }
}

/**
 * A raw socket speaking HTTP/1.1 by hand: an upgrade request's answer (an error page, a redirect,
 * a refused handshake) or a 101 before the tunnel takes the socket over. Every answer but a 101
 * closes the connection after it.
 */
export class SocketResponder implements Responder {
  readonly socket: Socket;
  readonly http2 = false;
  status = 0;
  ended = false;
  #extra: string[] | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  get headersSent(): boolean {
    return this.status !== 0;
  }
  get destroyed(): boolean {
    return this.socket.destroyed;
  }
  get finished(): boolean {
    return this.status !== 0 && (this.ended || this.status === 101);
  }
  setHeader(name: string, value: string): void {
    this.#extra ??= [];
    this.#extra.push(name, value);
  }
  writeHead(status: number, headers: OutHeaders): void {
    this.status = status;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    const extra = this.#extra;
    if (extra !== null) for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
    for (const name in headers) {
      if (name === 'connection') continue;
      const v = headers[name];
      if (Array.isArray(v)) for (const x of v) head += `${name}: ${x}\r\n`;
      else head += `${name}: ${v}\r\n`;
    }
    head += status === 101 ? 'connection: upgrade\r\n\r\n' : 'connection: close\r\n\r\n';
    if (!this.socket.destroyed) this.socket.write(head, 'latin1');
  }
  write(chunk: Buffer): boolean {
    return this.socket.destroyed ? false : this.socket.write(chunk);
  }
  end(chunk?: Buffer | string): void {
    this.ended = true;
    if (this.socket.destroyed) return;
    if (this.status === 101) return;
    if (chunk === undefined) this.socket.end();
    else this.socket.end(chunk);
  }
  trailers(): boolean {
    return false;
  }
  onDrain(fn: () => void): void {
    this.socket.once('drain', fn);
  }
  onClose(fn: () => void): void {
    this.socket.once('close', fn);
  }
  onFinish(fn: () => void): void {
    this.socket.once('finish', fn);
  }
  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A responder in front of another: the base of body middlewares' filters (compress, cache). Every
 * call goes on to `outer` unchanged; a filter overrides what it works on (usually writeHead, write,
 * end and onDrain) and keeps backpressure: write() returns false while what it passes on is full.
 * The state getters (headersSent, status, ended, finished) read `outer`: a filter that holds the
 * head or the end back must override them too.
 */
export class ResponderFilter implements Responder {
  readonly outer: Responder;

  constructor(outer: Responder) {
    this.outer = outer;
  }

  get http2(): boolean {
    return this.outer.http2;
  }
  get headersSent(): boolean {
    return this.outer.headersSent;
  }
  get destroyed(): boolean {
    return this.outer.destroyed;
  }
  get ended(): boolean {
    return this.outer.ended;
  }
  get finished(): boolean {
    return this.outer.finished;
  }
  get status(): number {
    return this.outer.status;
  }
  /** The HTTP/2 stream responder can end a stream with its head (gRPC trailers-only answers). */
  get endsWithHeaders(): boolean {
    return (this.outer as { endsWithHeaders?: boolean }).endsWithHeaders === true;
  }
  setHeader(name: string, value: string): void {
    this.outer.setHeader(name, value);
  }
  writeHead(status: number, headers: OutHeaders, close?: boolean): void {
    this.outer.writeHead(status, headers, close);
  }
  write(chunk: Buffer): boolean {
    return this.outer.write(chunk);
  }
  end(chunk?: Buffer | string): void {
    this.outer.end(chunk);
  }
  trailers(t: Record<string, string>): boolean {
    return this.outer.trailers(t);
  }
  onDrain(fn: () => void): void {
    this.outer.onDrain(fn);
  }
  onClose(fn: () => void): void {
    this.outer.onClose(fn);
  }
  onFinish(fn: () => void): void {
    this.outer.onFinish(fn);
  }
  destroy(): void {
    this.outer.destroy();
  }
}
