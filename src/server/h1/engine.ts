// Our own HTTP/1.1 server engine on `net` and `tls` sockets: the strict parser (parser.ts) feeds
// the one request path (pipeline/run.ts) with an H1Request, and H1Responder writes the answer
// straight to the socket: the head and the first body bytes in one write, chunked framing when
// the length is not known, keep-alive, pipelined requests answered in order (the next one is
// parsed only once the current answer is written), Expect: 100-continue sent when the body is first
// read, upgrades handed to the tunnel with the bytes that followed their head, backpressure both
// ways, and the header, keep-alive and body timeouts of node:http with the same reasons.
import { STATUS_CODES } from 'node:http';
import type { Http2Server } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import type { LimitsConfig } from '../../config/schema.ts';
import { gateConnections, gateFor } from '../../limits/index.ts';
import type { Reason } from '../../pipeline/errors.ts';
import type { OutHeaders, Responder } from '../../pipeline/responder.ts';
import { chain, SocketResponder } from '../../pipeline/responder.ts';
import { handleRequest } from '../../pipeline/run.ts';
import type { ListenerSlot, Runtime } from '../../pipeline/runtime.ts';
import { isWebSocketUpgrade } from '../../upstream/tunnel.ts';
import { answerMalformed } from '../malformed.ts';
import { sniffPreface } from '../preface.ts';
import {
  BODY_MASK,
  BODY_NONE,
  ERROR,
  FLAG_CONNECT,
  FLAG_EXPECT_CONTINUE,
  FLAG_EXPECT_OTHER,
  FLAG_KEEP_ALIVE,
  FLAG_UPGRADE,
  type H1Handler,
  H1Parser,
} from './parser.ts';
import { type BodySource, H1Request } from './request.ts';

/** node:http's default cap on header fields. */
const MAX_HEADER_COUNT = 2000;

/**
 * Lingering close: after an answer that leaves a request body unread (413, 408, a 429 before the
 * body), the connection is ended on our side and what the client still sends is read and dropped,
 * so that it sees the answer rather than a reset; a client that keeps sending (or never closes its
 * side) is cut off after this long. (nginx: lingering_timeout 5 s.)
 */
const LINGER_MS = 5000;

const PARSE_ERRORS: Record<number, Reason> = {
  400: 'bad_request',
  413: 'body_too_large',
  414: 'uri_too_long',
  431: 'headers_too_large',
  501: 'not_implemented',
  505: 'version_not_supported',
};

/** The engine's connections on one listener. */
export class H1Server {
  readonly rt: Runtime;
  readonly slot: ListenerSlot;
  readonly limits: LimitsConfig;
  /** Cleartext HTTP/2 with prior knowledge goes here (h2c listeners); null: HTTP/1.1 only. */
  readonly h2c: Http2Server | null;
  readonly connections = new Set<H1Connection>();
  #closing = false;

  constructor(rt: Runtime, slot: ListenerSlot, limits: LimitsConfig, h2c: Http2Server | null) {
    this.rt = rt;
    this.slot = slot;
    this.limits = limits;
    this.h2c = h2c;
  }

  /** Serves a connected (or TLS-negotiated) socket. */
  readonly accept = (socket: Socket): void => {
    socket.setNoDelay(true);
    if (this.h2c !== null) return this.#sniff(socket);
    this.connections.add(new H1Connection(this, socket));
  };

  /** h2c: the first bytes say whether this is HTTP/2 (the preface) or HTTP/1.1. */
  #sniff(socket: Socket): void {
    sniffPreface(socket, this.limits.headerTimeout, this.#toH2, this.#toH1);
  }

  readonly #toH2 = (socket: Socket): void => {
    (this.h2c as Http2Server).emit('connection', socket);
  };

  readonly #toH1 = (socket: Socket): void => {
    this.connections.add(new H1Connection(this, socket));
  };

  /** No new requests on connections that are between requests: close them. */
  closeIdle(): void {
    this.#closing = true;
    for (const c of this.connections) if (c.idle) c.socket.end();
  }

  /** Every connection closed now. */
  closeAll(): void {
    this.#closing = true;
    for (const c of this.connections) c.socket.destroy();
  }

  get closing(): boolean {
    return this.#closing;
  }
}

/** A plain HTTP listener on the engine, behind the listener's connection gate (limits/gate.ts). */
export function createH1Server(h1: H1Server): Server {
  // allowHalfOpen: a client that half-closes after its request still gets the answer.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, h1.accept);
  gateConnections(server, gateFor(h1.rt, h1.slot));
  return server;
}

class H1Connection implements H1Handler, BodySource {
  readonly server: H1Server;
  readonly socket: Socket;
  readonly parser: H1Parser;
  req: H1Request | null = null;
  res: H1Responder | null = null;
  /** Input not parsed yet: the parser is paused (body backpressure, or the next pipelined request). */
  rest: Buffer | null = null;
  /** execute() is running: what it triggers must not call it again. */
  parsing = false;
  /** When the current head began (ms); 0 between requests. */
  headStart = 0;
  keepAlive = true;
  /** The connection was ended by us with the client's body unread: it is destroyed after LINGER_MS. */
  lingering = false;
  /** The current request's body is complete. */
  messageDone = false;
  /** The current request is a WebSocket upgrade: the tunnel takes the socket when its head is parsed. */
  upgrading = false;
  expectContinue = false;
  /** The client has half-closed: no more requests, close once the current answer is written. */
  clientEnded = false;
  #bodyPaused = false;

  constructor(server: H1Server, socket: Socket) {
    this.server = server;
    this.socket = socket;
    const limits = server.limits;
    this.parser = new H1Parser(this, {
      maxHeadBytes: limits.maxRequestHeaders + limits.maxUriLength,
      maxUriLength: limits.maxUriLength,
      maxHeaderCount: MAX_HEADER_COUNT,
      // A missing Host is refused by the accept stage, as on every transport.
      requireHost: false,
    });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('timeout', this.onTimeout);
    socket.on('error', onSocketError);
    socket.once('close', this.onClose);
    socket.setTimeout(limits.headerTimeout);
  }

  /** Between requests, nothing of the next one read. */
  get idle(): boolean {
    return this.req === null && this.parser.idle && this.rest === null;
  }

  readonly onData = (chunk: Buffer): void => {
    if (this.rest !== null) {
      // Only while a pause is being set up; the socket is paused right after.
      this.rest = Buffer.concat([this.rest, chunk]);
      this.socket.pause();
      return;
    }
    this.feed(chunk);
  };

  feed(chunk: Buffer): void {
    let buf = chunk;
    for (;;) {
      if (this.req === null && this.headStart === 0) {
        this.headStart = performance.now();
        this.socket.setTimeout(this.server.limits.headerTimeout);
      }
      this.parsing = true;
      const n = this.parser.execute(buf);
      this.parsing = false;
      if (this.lingering) return;
      if (n === ERROR) return this.malformed();
      if (this.upgrading && this.parser.upgraded) return this.startUpgrade(buf.subarray(n));
      if (this.parser.upgraded) this.parser.resume(); // an Upgrade other than WebSocket: plain HTTP/1.1
      if (n >= buf.length) {
        this.rest = null;
        break;
      }
      buf = buf.subarray(n);
      if (this.req === null && !this.socket.destroyed && !this.clientEnded) {
        // The last answer is written and the next request is already here (pipelining).
        this.parser.resume();
        continue;
      }
      this.rest = buf;
      this.socket.pause();
      return;
    }
    // A head that takes too long in all (a client sending a byte now and then) is cut off.
    if (this.req === null && this.headStart !== 0 && !this.parser.idle) {
      if (performance.now() - this.headStart > this.server.limits.headerTimeout)
        this.refuse('request_timeout');
    }
  }

  // ---- parser events

  onHead(method: string, target: string, minor: number, raw: string[], flags: number): void {
    // Pipelined behind an answer that ended the connection: dropped with the rest.
    if (this.lingering) return;
    const srv = this.server;
    this.headStart = 0;
    this.socket.setTimeout(0);
    const hasBody = (flags & BODY_MASK) !== BODY_NONE;
    const req = new H1Request(this, this.socket, method, target, minor, raw, hasBody);
    const res = new H1Responder(this, method === 'HEAD', minor);
    this.req = req;
    this.res = res;
    this.keepAlive = (flags & FLAG_KEEP_ALIVE) !== 0 && !srv.closing;
    this.messageDone = !hasBody;
    this.expectContinue = (flags & FLAG_EXPECT_CONTINUE) !== 0;
    if ((flags & FLAG_CONNECT) !== 0) return this.answer('method_not_allowed', req, res);
    if ((flags & FLAG_EXPECT_OTHER) !== 0) return this.answer('expectation_failed', req, res);
    if ((flags & FLAG_UPGRADE) !== 0 && isWebSocketUpgrade(req)) {
      this.upgrading = true;
      return;
    }
    handleRequest(srv.rt, srv.slot, req as never, res, null);
  }

  onBody(chunk: Buffer): void {
    const req = this.req;
    if (req === null) return;
    if (!req.pushBody(chunk)) {
      this.#bodyPaused = true;
      this.parser.pause();
    }
  }

  onTrailers(): void {
    // Trailers of a request body are not forwarded (as node:http's req.trailers, nobody reads them).
  }

  onMessageComplete(): void {
    this.messageDone = true;
    const req = this.req;
    if (req !== null) req.endBody();
    // The next pipelined request waits until this one is answered.
    if (!this.upgrading && this.req !== null) this.parser.pause();
  }

  // ---- body reading (from the request's _read)

  readBody(): void {
    const res = this.res;
    if (this.expectContinue && res !== null && !res.headersSent) {
      this.expectContinue = false;
      this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    }
    if (!this.#bodyPaused) return;
    this.#bodyPaused = false;
    this.parser.resume();
    if (this.parsing) return;
    this.socket.resume();
    const rest = this.rest;
    if (rest !== null) {
      this.rest = null;
      this.feed(rest);
    }
  }

  // ---- the answer is written

  responseDone(res: H1Responder, close: boolean): void {
    if (res !== this.res) return;
    const req = this.req as H1Request;
    this.req = null;
    this.res = null;
    this.expectContinue = false;
    if (close || !this.keepAlive || this.clientEnded || !this.messageDone || this.server.closing) {
      // Not reusable: asked to close, or the request body was not read to its end.
      if (!this.messageDone) {
        req.abortBody(abortedError());
        this.linger();
      }
      this.socket.end();
      return;
    }
    this.#bodyPaused = false;
    this.socket.setTimeout(this.server.limits.keepAliveTimeout);
    this.parser.resume();
    if (this.parsing) return;
    this.socket.resume();
    const rest = this.rest;
    if (rest !== null) {
      this.rest = null;
      this.feed(rest);
    }
  }

  // ---- the socket

  readonly onEnd = (): void => {
    // As node:http (without httpAllowHalfOpen): a client that ends its side has gone; a request
    // still running is aborted, and so is its upstream exchange.
    this.clientEnded = true;
    if (this.lingering) return void this.socket.destroy();
    if (this.req !== null) {
      this.socket.destroy();
      return;
    }
    if (this.parser.finish() === ERROR && !this.parser.idle) return this.malformed();
    this.socket.end();
  };

  /** Ends reading for good: what the client still sends is dropped, for LINGER_MS at most. */
  linger(): void {
    const socket = this.socket;
    this.lingering = true;
    this.rest = null;
    socket.off('data', this.onData);
    socket.on('data', discard);
    socket.setTimeout(LINGER_MS);
    socket.resume();
  }

  readonly onTimeout = (): void => {
    if (this.lingering) return void this.socket.destroy();
    if (this.req !== null) return;
    if (this.parser.idle && this.rest === null) this.socket.destroy();
    else this.refuse('request_timeout');
  };

  readonly onClose = (): void => {
    this.server.connections.delete(this);
    const req = this.req;
    const res = this.res;
    this.req = null;
    this.res = null;
    if (req !== null && !this.messageDone) req.abortBody(abortedError());
    if (res !== null) res.gone();
  };

  /** A WebSocket handshake: the tunnel takes the socket, with the bytes read after the head. */
  startUpgrade(head: Buffer): void {
    const socket = this.socket;
    const req = this.req as H1Request;
    this.req = null;
    this.res = null;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('timeout', this.onTimeout);
    socket.off('close', this.onClose);
    // Nothing more is read until the tunnel pipes the socket (after the target's 101).
    socket.pause();
    socket.setTimeout(0);
    this.server.connections.delete(this);
    const srv = this.server;
    handleRequest(srv.rt, srv.slot, req as never, new SocketResponder(socket), Buffer.from(head));
  }

  /** Input the parser refused. */
  malformed(): void {
    const reason = PARSE_ERRORS[this.parser.errorStatus] ?? 'bad_request';
    const req = this.req;
    const res = this.res;
    if (req !== null && res !== null) {
      // The body was malformed mid-request: it cannot complete, and the connection cannot be
      // trusted for another request (as node:http, which destroys it).
      req.abortBody(abortedError());
      this.socket.destroy();
      return;
    }
    this.refuse(reason);
  }

  /** A request too broken, or too slow, to reach the request path: answer, log, close. */
  refuse(reason: Reason): void {
    this.socket.off('data', this.onData);
    this.socket.setTimeout(0);
    const srv = this.server;
    answerMalformed(srv.rt, srv.slot, this.socket, reason);
  }

  /** Answers a parsed request with an error through the request path's writer (and log). */
  answer(reason: Reason, req: H1Request, res: H1Responder): void {
    const srv = this.server;
    this.keepAlive = false;
    handleRequest(srv.rt, srv.slot, req as never, res, null, reason);
  }
}

function discard(): void {
  // A lingering connection's bytes: read so that the client's writes complete, then dropped.
}

function onSocketError(): void {
  // 'close' follows; a connection reset is the client's business.
}

function abortedError(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

// ---------------------------------------------------------------- the responder

let dateSecond = 0;
let dateValue = '';

/** The Date header, formatted once a second. */
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateValue = new Date(s * 1000).toUTCString();
  }
  return dateValue;
}

const statusLines: string[] = [];

function statusLine(status: number): string {
  let line = statusLines[status];
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    if (status >= 100 && status < 1000) statusLines[status] = line;
  }
  return line;
}

function badValue(v: string): boolean {
  return v.includes('\r') || v.includes('\n') || v.includes('\0');
}

/** An answer written straight to the connection's socket. */
class H1Responder implements Responder {
  readonly http2 = false;
  readonly #conn: H1Connection;
  readonly #socket: Socket;
  readonly #head: boolean;
  readonly #minor: number;
  status = 0;
  ended = false;
  finished = false;
  #noBody = false;
  #chunked = false;
  #close = false;
  /** The head, until the first body bytes (or the end) go out with it. */
  #pending: string | null = null;
  #extra: string[] | null = null;
  #trailers: Record<string, string> | null = null;
  #onClose: (() => void) | null = null;
  #onFinish: (() => void) | null = null;
  #closed = false;

  constructor(conn: H1Connection, head: boolean, minor: number) {
    this.#conn = conn;
    this.#socket = conn.socket;
    this.#head = head;
    this.#minor = minor;
  }

  get headersSent(): boolean {
    return this.status !== 0;
  }
  get destroyed(): boolean {
    return this.#socket.destroyed;
  }

  setHeader(name: string, value: string): void {
    this.#extra ??= [];
    this.#extra.push(name, value);
  }

  writeHead(status: number, headers: OutHeaders, close = false): void {
    if (this.status !== 0) return;
    this.status = status;
    let head = statusLine(status);
    const extra = this.#extra;
    if (extra !== null) for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
    let length = false;
    let date = false;
    for (const name in headers) {
      const v = headers[name];
      if (name === 'connection' || name === 'transfer-encoding' || name === 'keep-alive') continue;
      if (name === 'content-length') length = true;
      else if (name === 'date') date = true;
      if (typeof v === 'string') {
        if (!badValue(v)) head += `${name}: ${v}\r\n`;
      } else if (typeof v === 'number') {
        head += `${name}: ${v}\r\n`;
      } else {
        for (let i = 0; i < v.length; i++) if (!badValue(v[i])) head += `${name}: ${v[i]}\r\n`;
      }
    }
    const conn = this.#conn;
    this.#noBody = this.#head || status < 200 || status === 204 || status === 304;
    if (!this.#noBody && !length) {
      if (this.#minor === 1) {
        this.#chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else {
        close = true; // HTTP/1.0: the end of the body is the end of the connection
      }
    }
    if (close || !conn.keepAlive || conn.clientEnded || conn.server.closing) {
      this.#close = true;
      head += 'connection: close\r\n';
    } else if (this.#minor === 0) {
      head += 'connection: keep-alive\r\n';
    }
    if (!date) head += `date: ${httpDate()}\r\n`;
    this.#pending = `${head}\r\n`;
  }

  write(chunk: Buffer): boolean {
    const s = this.#socket;
    if (s.destroyed) return false;
    if (this.status === 0) this.writeHead(200, {});
    if (this.#noBody || chunk.length === 0) {
      if (this.#pending !== null) return this.#flushHead();
      return true;
    }
    s.cork();
    if (this.#pending !== null) {
      s.write(this.#pending, 'latin1');
      this.#pending = null;
    }
    let ok: boolean;
    if (this.#chunked) {
      s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      ok = s.write('\r\n', 'latin1');
    } else {
      ok = s.write(chunk);
    }
    s.uncork();
    return ok;
  }

  end(chunk?: Buffer | string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.status === 0) this.writeHead(200, {});
    const s = this.#socket;
    if (!s.destroyed) {
      const body = chunk === undefined || this.#noBody ? undefined : chunk;
      if (body !== undefined && body.length > 0) {
        s.cork();
        if (this.#pending !== null) {
          s.write(this.#pending, 'latin1');
          this.#pending = null;
        }
        if (this.#chunked) {
          const n = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
          s.write(`${n.toString(16)}\r\n`, 'latin1');
          s.write(body);
          s.write(`\r\n${this.#lastChunk()}`, 'latin1');
        } else {
          s.write(body);
        }
        s.uncork();
      } else {
        const tail = this.#chunked ? this.#lastChunk() : '';
        const head = this.#pending ?? '';
        this.#pending = null;
        if (head !== '' || tail !== '') s.write(head + tail, 'latin1');
      }
    }
    this.finished = true;
    const f = this.#onFinish;
    this.#onFinish = null;
    if (f !== null) f();
    this.#fireClose();
    this.#conn.responseDone(this, this.#close);
  }

  #lastChunk(): string {
    const t = this.#trailers;
    if (t === null) return '0\r\n\r\n';
    let s = '0\r\n';
    for (const name in t) if (!badValue(t[name])) s += `${name}: ${t[name]}\r\n`;
    return `${s}\r\n`;
  }

  #flushHead(): boolean {
    const head = this.#pending as string;
    this.#pending = null;
    return this.#socket.write(head, 'latin1');
  }

  trailers(t: Record<string, string>): boolean {
    if (!this.#chunked) return false;
    this.#trailers = t;
    return true;
  }

  onDrain(fn: () => void): void {
    this.#socket.once('drain', fn);
  }

  onClose(fn: () => void): void {
    if (this.#closed) return fn();
    this.#onClose = chain(this.#onClose, fn);
  }

  onFinish(fn: () => void): void {
    if (this.finished) return fn();
    this.#onFinish = chain(this.#onFinish, fn);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** The connection closed under this answer. */
  gone(): void {
    this.#fireClose();
  }

  #fireClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    const f = this.#onClose;
    this.#onClose = null;
    if (f !== null) f();
  }
}
