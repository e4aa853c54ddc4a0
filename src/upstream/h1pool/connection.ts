// One pooled HTTP/1.1 connection to a target, and the request object that runs on it.
//
// H1Request is the only object made per request: it holds the dispatch options and the handler,
// links into the pool's FIFO queue, and is itself the DispatchController handed to the handler
// (pause, resume, abort). Everything else is per connection: the socket, the response parser, one
// timer, and its listeners, bound once when the connection is made.
//
// A connection carries one request at a time (no pipelining). It is reused only after a complete
// response to a fully sent request, when the response allows it (HTTP/1.1 without Connection: close,
// or HTTP/1.0 with keep-alive; not close-delimited; nothing after the response) and the target's
// Keep-Alive timeout, less a safety margin, leaves it time. Anything else (an abort, an error, an
// early response to a request still sending its body) destroys it.

import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { H1PoolError } from './errors.ts';
import { ERROR, type H1ResponseHandler, H1ResponseParser, type ResponseHeaders } from './parser.ts';
import type { H1Pool } from './pool.ts';

export interface H1DispatchOptions {
  method: string;
  path: string;
  /** Flat [name, value, ...]. A content-length here frames the body; without one it goes chunked. */
  headers: string[];
  body: null | Readable;
  headersTimeout?: number;
  bodyTimeout?: number;
}

type Handler = Dispatcher.DispatchHandler;

// request states
const R_NEW = 0;
const R_QUEUED = 1;
const R_ACTIVE = 2;
const R_DONE = 3;

/** One request: the dispatch options, its place in the queue, and the handler's controller. */
export class H1Request implements Dispatcher.DispatchController {
  readonly pool: H1Pool;
  readonly handler: Handler;
  readonly method: string;
  readonly path: string;
  readonly headers: string[];
  readonly body: Readable | null;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  state: number;
  /** The next request in the pool's queue. */
  next: H1Request | null;
  conn: H1Connection | null;
  isPaused: boolean;
  isAborted: boolean;
  abortReason: Error | null;

  constructor(pool: H1Pool, opts: H1DispatchOptions, handler: Handler) {
    this.pool = pool;
    this.handler = handler;
    this.method = opts.method;
    this.path = opts.path;
    this.headers = opts.headers;
    this.body = opts.body ?? null;
    this.headersTimeout = opts.headersTimeout ?? pool.headersTimeout;
    this.bodyTimeout = opts.bodyTimeout ?? pool.bodyTimeout;
    this.state = R_NEW;
    this.next = null;
    this.conn = null;
    this.isPaused = false;
    this.isAborted = false;
    this.abortReason = null;
  }

  get aborted(): boolean {
    return this.isAborted;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get reason(): Error | null {
    return this.abortReason;
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    const conn = this.conn;
    if (conn !== null && this.state === R_ACTIVE) conn.resumeReading();
  }

  abort(reason: Error): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.abortReason = reason;
    this.fail(reason);
  }

  /** Ends the request with `err` (once): out of the queue or off its connection, then onResponseError. */
  fail(err: Error): void {
    const state = this.state;
    if (state === R_DONE) return;
    this.state = R_DONE;
    if (state === R_QUEUED) this.pool.queued--;
    else if (state === R_ACTIVE) {
      const conn = this.conn as H1Connection;
      this.conn = null;
      conn.lost(this);
    }
    this.handler.onResponseError?.(this, err);
  }

  get queued(): boolean {
    return this.state === R_QUEUED;
  }

  /** Called by the pool: in its queue now. */
  enqueued(): void {
    this.state = R_QUEUED;
  }

  /** Called by the pool: out of its queue, to be started or failed. */
  dequeued(): void {
    this.state = R_NEW;
  }

  get done(): boolean {
    return this.state === R_DONE;
  }
}

// timer phases
const P_NONE = 0;
const P_CONNECT = 1;
const P_HEADERS = 2;
const P_BODY = 3;
const P_IDLE = 4;

/** Sent as onRequestStart's context (handlers only read it). */
const CONTEXT = Object.freeze({});

export { CONTEXT as REQUEST_CONTEXT };

function noop(): void {}

export class H1Connection implements H1ResponseHandler {
  readonly pool: H1Pool;
  readonly socket: Socket;
  readonly parser: H1ResponseParser;
  /** The request on this connection, or null when idle (or closed). */
  req: H1Request | null;
  connected: boolean;
  /** Taken out of the pool: closing or closed, never given a request again. */
  gone: boolean;
  /** Where this connection sits in the pool's list (swap-remove). */
  index: number;
  refed: boolean;
  /** How long this connection may stay idle (ms): the pool's, or the target's Keep-Alive hint less a margin. */
  idleMs: number;
  /** Nothing prevents reuse after this response (set false by an early response, a cut request body...). */
  reusable: boolean;
  /** Set by onComplete; handled once the parser returns. */
  completed: boolean;
  /** Inside parser.execute (a resume from a handler callback must not parse again). */
  parsing: boolean;

  // the request being written
  sending: boolean;
  body: Readable | null;
  /** The head, until the first body bytes (or the body's end) go out with it. */
  head: string;
  /** Content-Length of the body, or -1 for chunked. */
  bodyLength: number;
  bodySent: number;
  bodyBlocked: boolean;
  /** bodySent when the headers timer was last armed: progress since then defers the timeout. */
  progressMark: number;

  // the response being read
  /** The rest of a chunk not parsed yet because the handler paused. */
  stash: Buffer | null;
  stashPos: number;
  /** The target ended the connection while a paused response still had bytes to hand out. */
  eof: boolean;

  // one timer for connect, headers, body and idle deadlines
  timer: NodeJS.Timeout | null;
  /** When the pending timer fires (performance.now() ms). */
  timerAt: number;
  phase: number;
  deadline: number;
  /** Last response bytes read (body idle timeout). */
  lastRead: number;
  /** A passed deadline waits for setImmediate (expireLater). */
  expiring: boolean;

  // listeners, bound once per connection
  readonly onConnect: () => void;
  readonly onData: (chunk: Buffer) => void;
  readonly onEnd: () => void;
  readonly onError: (err: Error & { code?: string }) => void;
  readonly onClose: () => void;
  readonly onDrain: () => void;
  readonly onTimer: () => void;
  readonly onExpire: () => void;
  readonly onBodyData: (chunk: Buffer) => void;
  readonly onBodyEnd: () => void;
  readonly onBodyError: (err: Error) => void;
  readonly onBodyClose: () => void;

  constructor(pool: H1Pool) {
    this.pool = pool;
    this.parser = new H1ResponseParser(this, pool.maxHeaderSize);
    this.req = null;
    this.connected = false;
    this.gone = false;
    this.index = -1;
    this.refed = true;
    this.idleMs = pool.keepAliveTimeout;
    this.reusable = true;
    this.completed = false;
    this.parsing = false;
    this.sending = false;
    this.body = null;
    this.head = '';
    this.bodyLength = -1;
    this.bodySent = 0;
    this.bodyBlocked = false;
    this.progressMark = 0;
    this.stash = null;
    this.stashPos = 0;
    this.eof = false;
    this.timer = null;
    this.timerAt = 0;
    this.phase = P_NONE;
    this.deadline = 0;
    this.lastRead = 0;
    this.expiring = false;
    this.onConnect = () => this.connectDone();
    this.onData = (chunk) => this.data(chunk);
    this.onEnd = () => this.ended();
    this.onError = (err) => this.errored(err);
    this.onClose = () => this.closed();
    this.onDrain = () => this.drained();
    this.onTimer = () => this.timerFired();
    this.onExpire = () => this.expireLater();
    this.onBodyData = (chunk) => this.bodyData(chunk);
    this.onBodyEnd = () => this.bodyEnd();
    this.onBodyError = (err) => this.bodyError(err);
    this.onBodyClose = () => this.bodyClosed();
    const socket = connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
    });
    this.socket = socket;
    socket.on('connect', this.onConnect);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    this.arm(P_CONNECT, pool.connectTimeout);
  }

  // --- the request ------------------------------------------------------------------------------------

  /** Runs `req` on this (connected, idle) connection. */
  start(req: H1Request): void {
    this.req = req;
    req.conn = this;
    req.state = R_ACTIVE;
    this.reusable = true;
    this.completed = false;
    this.stash = null;
    this.eof = false;
    if (!this.refed) {
      this.socket.ref();
      this.refed = true;
    }
    if (this.socket.isPaused()) this.socket.resume();
    const method = req.method;
    this.parser.start(method === 'HEAD');
    const h = req.headers;
    let head = method + ' ' + req.path + ' HTTP/1.1\r\n';
    let host = false;
    let length = -1;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      const value = h[i + 1];
      if (UNSAFE.test(value) || UNSAFE.test(name)) return this.refuse(req, `invalid header ${name}`);
      switch (name.length) {
        case 4:
          if (name === 'host' || name.toLowerCase() === 'host') host = true;
          break;
        case 14:
          if (name === 'content-length' || name.toLowerCase() === 'content-length') {
            length = contentLength(value);
            if (length < 0) return this.refuse(req, 'invalid content-length');
          }
          break;
        case 10: {
          // our framing decides these
          const lower = name.toLowerCase();
          if (lower === 'connection' || lower === 'keep-alive') continue;
          break;
        }
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') continue;
          break;
      }
      head += name + ': ' + value + '\r\n';
    }
    if (!host) head += 'host: ' + this.pool.authority + '\r\n';
    if (UNSAFE_LINE.test(method) || UNSAFE_LINE.test(req.path))
      return this.refuse(req, 'invalid request line');
    this.arm(P_HEADERS, req.headersTimeout);
    this.progressMark = 0;
    const body = req.body;
    if (body === null) {
      this.sending = false;
      this.socket.write(head + '\r\n', 'latin1');
      return;
    }
    // The head goes out with the first body bytes, or with the end of an empty body.
    this.sending = true;
    this.body = body;
    this.bodySent = 0;
    this.bodyBlocked = false;
    this.bodyLength = length;
    this.head = length === -1 ? head + 'transfer-encoding: chunked\r\n\r\n' : head + '\r\n';
    if (body.errored) return this.bodyError(body.errored);
    if (body.readableEnded) return this.bodyEnd();
    body.on('data', this.onBodyData);
    body.on('end', this.onBodyEnd);
    body.on('error', this.onBodyError);
    body.on('close', this.onBodyClose);
    body.resume();
  }

  /** A request that cannot be written as given: refused before anything is sent; the connection goes on. */
  private refuse(req: H1Request, message: string): void {
    this.sending = false;
    this.req = null;
    req.conn = null;
    req.state = R_DONE;
    req.handler.onResponseError?.(req, new H1PoolError('UND_ERR_INVALID_ARG', message));
    this.pool.release(this);
  }

  private bodyData(chunk: Buffer): void {
    if (!this.sending) return;
    let len = chunk.length;
    if (len === 0) return;
    const socket = this.socket;
    const head = this.head;
    let ok: boolean;
    if (this.bodyLength >= 0) {
      // Never past the declared length: the target would read the rest as another request.
      const room = this.bodyLength - this.bodySent;
      if (len > room) {
        this.reusable = false;
        if (room === 0) return;
        chunk = chunk.subarray(0, room);
        len = room;
      }
      this.bodySent += len;
      if (head !== '') {
        this.head = '';
        socket.cork();
        socket.write(head, 'latin1');
        ok = socket.write(chunk);
        socket.uncork();
      } else {
        ok = socket.write(chunk);
      }
    } else {
      const size = len.toString(16) + '\r\n';
      socket.cork();
      if (head !== '') {
        this.head = '';
        socket.write(head + size, 'latin1');
      } else {
        socket.write('\r\n' + size, 'latin1');
      }
      this.bodySent += len;
      ok = socket.write(chunk);
      socket.uncork();
    }
    if (!ok) {
      this.bodyBlocked = true;
      (this.body as Readable).pause();
    }
  }

  private bodyEnd(): void {
    if (!this.sending) return;
    const req = this.req as H1Request;
    if (this.bodyLength >= 0 && this.bodySent < this.bodyLength) {
      this.detachBody();
      req.fail(
        new H1PoolError(
          'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
          `request body ended after ${this.bodySent} of ${this.bodyLength} bytes`,
        ),
      );
      return;
    }
    const head = this.head;
    if (this.bodyLength >= 0) {
      if (head !== '') this.socket.write(head, 'latin1');
    } else if (head !== '') {
      this.socket.write(head + '0\r\n\r\n', 'latin1');
    } else {
      this.socket.write('\r\n0\r\n\r\n', 'latin1');
    }
    this.head = '';
    this.detachBody();
  }

  private bodyError(err: Error): void {
    if (!this.sending) return;
    const req = this.req as H1Request;
    this.detachBody();
    req.fail(err);
  }

  private bodyClosed(): void {
    if (!this.sending) return;
    const body = this.body as Readable;
    if (body.readableEnded) return this.bodyEnd();
    this.bodyError(
      body.errored ?? new H1PoolError('UND_ERR_ABORTED', 'the request body closed before its end'),
    );
  }

  private drained(): void {
    if (this.bodyBlocked && this.sending) {
      this.bodyBlocked = false;
      (this.body as Readable).resume();
    }
  }

  /**
   * Stops sending the request body. The body is not destroyed (it may be the client's request, which
   * a retry could still send elsewhere); when `drain`, what is left of it is read and dropped.
   */
  private detachBody(drain = false): void {
    this.sending = false;
    const body = this.body;
    if (body === null) return;
    this.body = null;
    this.head = '';
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('close', this.onBodyClose);
    // A body not ended may still error (the client going away, a body over the limit): someone must
    // listen, or the error is uncaught. (Node decides whether to emit an IncomingMessage's error a
    // tick before it does, so ours cannot just go.)
    if (!body.readableEnded && !body.listeners('error').includes(noop)) body.on('error', noop);
    body.off('error', this.onBodyError);
    if (drain) {
      body.resume();
    } else if (this.bodyBlocked) {
      this.bodyBlocked = false;
    } else {
      body.pause();
    }
  }

  // --- the response -----------------------------------------------------------------------------------

  private data(chunk: Buffer): void {
    if (this.req === null) {
      // Bytes on an idle connection answer nothing we asked: the connection cannot be trusted.
      this.discard();
      return;
    }
    this.lastRead = performance.now();
    this.feed(chunk, 0);
  }

  private feed(buf: Buffer, pos: number): void {
    const req = this.req as H1Request;
    let r: number;
    this.parsing = true;
    try {
      r = this.parser.execute(buf, pos);
      this.parsing = false;
    } catch (err) {
      this.parsing = false;
      this.handlerThrew(req, err as Error);
      return;
    }
    if (r === ERROR) {
      const p = this.parser;
      this.fail(req, new H1PoolError(p.errorCode, `invalid response: ${p.errorMessage}`));
      return;
    }
    if (this.completed) {
      this.afterResponse(r < buf.length);
      return;
    }
    if (this.req !== req) return; // aborted by the handler: the connection is gone already
    if (req.isPaused) {
      if (r < buf.length) {
        this.stash = buf;
        this.stashPos = r;
      }
      this.socket.pause();
    }
  }

  /** A handler threw: the request ends with its error, as undici does, and the connection with it. */
  private handlerThrew(req: H1Request, err: Error): void {
    if (this.completed) {
      this.completed = false;
      this.pool.finishing--;
    }
    if (!req.done) req.fail(err);
    else process.emitWarning(err);
    if (!this.gone) this.discard();
  }

  /** The handler resumed a paused response. */
  resumeReading(): void {
    // (resumed from inside a handler callback: the parser's loop goes on by itself)
    if (this.parsing) return;
    const req = this.req;
    this.lastRead = performance.now();
    const stash = this.stash;
    if (stash !== null) {
      this.stash = null;
      this.feed(stash, this.stashPos);
    } else if (!this.parser.done) {
      // paused just as the body ended: let the parser complete the response
      this.feed(EMPTY, 0);
    }
    if (this.gone) return;
    if (req !== null && this.req === req && req.isPaused) return; // paused again
    if (this.eof) {
      this.ended();
      return;
    }
    // reading again, for this response, or (done, back in the pool) to notice the target closing
    this.socket.resume();
  }

  onHead(status: number, reason: string, headers: ResponseHeaders): boolean {
    const req = this.req as H1Request;
    if (status >= 200) {
      this.arm(P_BODY, req.bodyTimeout);
      const p = this.parser;
      if (p.keepAlive) {
        const hint = p.keepAliveTimeout;
        const pool = this.pool;
        this.idleMs =
          hint === -1
            ? pool.keepAliveTimeout
            : Math.min(hint * 1000 - pool.keepAliveTimeoutThreshold, pool.keepAliveMaxTimeout);
      }
    }
    req.handler.onResponseStart?.(req, status, headers, reason);
    return this.req === req && !req.isPaused;
  }

  onBody(chunk: Buffer): boolean {
    const req = this.req as H1Request;
    req.handler.onResponseData?.(req, chunk);
    return this.req === req && !req.isPaused;
  }

  onComplete(trailers: ResponseHeaders): void {
    const req = this.req as H1Request;
    this.req = null;
    req.conn = null;
    req.state = R_DONE;
    this.completed = true;
    if (this.sending) {
      // The target answered before reading the whole request: it will not read the rest as this
      // request's, so the connection cannot be reused.
      this.reusable = false;
      this.detachBody(true);
    }
    this.arm(P_NONE, 0);
    // A request dispatched from onResponseEnd waits for this connection rather than open another.
    this.pool.finishing++;
    req.handler.onResponseEnd?.(req, trailers);
  }

  /** After a complete response: back to the pool, or closed. */
  private afterResponse(extra: boolean): void {
    this.completed = false;
    this.pool.finishing--;
    if (this.gone || extra || !this.reusable || !this.parser.keepAlive || this.idleMs <= 0 || this.eof) {
      this.discard();
      return;
    }
    this.pool.release(this);
  }

  /** Idle in the pool: dropped after idleMs, before the target would close it. */
  idle(): void {
    this.arm(P_IDLE, this.idleMs);
    if (this.refed) {
      this.socket.unref();
      this.refed = false;
    }
  }

  // --- ends -------------------------------------------------------------------------------------------

  private ended(): void {
    const req = this.req;
    if (req === null) {
      this.discard();
      return;
    }
    if (this.stash !== null) {
      // paused with bytes still to hand out: the end is handled once they are
      this.eof = true;
      return;
    }
    this.eof = true;
    let r: number;
    try {
      r = this.parser.finish();
    } catch (err) {
      this.handlerThrew(req, err as Error);
      return;
    }
    if (r === ERROR) {
      const p = this.parser;
      const code = p.errorCode;
      this.fail(
        req,
        new H1PoolError(
          code,
          code === 'UND_ERR_SOCKET' ? 'other side closed' : `invalid response: ${p.errorMessage}`,
        ),
      );
      return;
    }
    if (this.completed) this.afterResponse(true);
  }

  private errored(err: Error & { code?: string }): void {
    if (!this.connected) {
      this.pool.connectFailed(this, err);
      return;
    }
    const req = this.req;
    if (req === null) {
      this.discard();
      return;
    }
    const p = this.parser;
    if (err.code === 'ECONNRESET' && p.headDone && !p.keepAlive && this.stash === null) {
      // A body delimited by the close, cut by a reset: as undici, the end of the body.
      this.ended();
      if (this.req !== req) return;
    }
    this.fail(req, new H1PoolError('UND_ERR_SOCKET', err.message, err));
  }

  private closed(): void {
    this.phase = P_NONE;
    this.deadline = Number.POSITIVE_INFINITY;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.connected) {
      this.pool.connectFailed(this, new H1PoolError('UND_ERR_SOCKET', 'closed before connecting'));
      return;
    }
    const req = this.req;
    if (req !== null) this.fail(req, new H1PoolError('UND_ERR_SOCKET', 'closed'));
    else this.pool.remove(this);
  }

  private connectDone(): void {
    this.connected = true;
    this.arm(P_NONE, 0);
    this.pool.connected(this);
  }

  /** Ends the request on this connection with `err`, and the connection with it. */
  fail(req: H1Request, err: Error): void {
    if (this.req === req) req.fail(err);
    if (!this.gone) this.discard();
  }

  /** The request was taken off this connection (aborted or failed): the connection cannot go on. */
  lost(req: H1Request): void {
    if (this.req !== req) return;
    this.req = null;
    if (this.sending) this.detachBody();
    this.stash = null;
    this.discard();
  }

  /** Out of the pool, socket destroyed. */
  discard(): void {
    if (!this.gone) {
      this.pool.remove(this);
    }
    this.arm(P_NONE, 0);
    this.socket.destroy();
  }

  /** Destroys the connection and fails its request with `err` (pool.destroy). */
  destroy(err: Error): void {
    const req = this.req;
    if (req !== null) req.fail(err);
    this.discard();
  }

  // --- the timer --------------------------------------------------------------------------------------

  /**
   * Sets the deadline for `phase`, `ms` from now (0: none). One Node timer per connection: it is only
   * replaced when the new deadline comes before it fires; when it fires early, it is set again for
   * what is left. So a request on a busy connection usually costs no timer at all.
   */
  arm(phase: number, ms: number): void {
    this.phase = phase;
    if (phase === P_NONE || !(ms > 0)) {
      this.deadline = Number.POSITIVE_INFINITY;
      return;
    }
    const now = performance.now();
    const at = now + ms;
    this.deadline = at;
    if (phase === P_BODY) this.lastRead = now;
    if (this.timer !== null) {
      if (this.timerAt <= at + 1) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
    this.timerAt = at;
  }

  private timerFired(): void {
    this.timer = null;
    this.check(false);
  }

  /** A deadline passed: act after the I/O already received (see check). */
  private expireLater(): void {
    this.expiring = false;
    if (this.timer === null) this.check(true);
  }

  /**
   * Acts on the current deadline if it has passed. Node runs due timers before it reads the sockets
   * that became ready meanwhile, so a timeout would pre-empt what already happened before it (the
   * client leaving, the response arriving). It is acted on from setImmediate instead, after that I/O,
   * and checked again then (`late`). Only a deadline that passes costs this; a request does not.
   */
  private check(late: boolean): void {
    const phase = this.phase;
    let deadline = this.deadline;
    if (deadline === Number.POSITIVE_INFINITY || this.gone) return;
    const now = performance.now();
    const req = this.req;
    if (phase === P_BODY && req !== null) {
      if (!(req.bodyTimeout > 0)) return;
      if (req.isPaused) this.lastRead = now; // a paused response is not idle: the client is slow
      deadline = this.lastRead + req.bodyTimeout;
    }
    if (now < deadline - 1) {
      this.rearm(deadline - now);
      return;
    }
    if (!late) {
      if (!this.expiring) {
        this.expiring = true;
        setImmediate(this.onExpire);
      }
      return;
    }
    switch (phase) {
      case P_CONNECT:
        this.socket.destroy();
        this.pool.connectFailed(this, new H1PoolError('UND_ERR_CONNECT_TIMEOUT', 'connect timeout'));
        return;
      case P_HEADERS:
        if (req === null) return;
        if (this.sending && (this.bodySent !== this.progressMark || !this.socket.writableNeedDrain)) {
          // still sending the request, and not held up by the target: wait on
          this.progressMark = this.bodySent;
          this.deadline = now + req.headersTimeout;
          this.rearm(req.headersTimeout);
          return;
        }
        this.fail(req, new H1PoolError('UND_ERR_HEADERS_TIMEOUT', 'headers timeout'));
        return;
      case P_BODY:
        if (req !== null) this.fail(req, new H1PoolError('UND_ERR_BODY_TIMEOUT', 'body timeout'));
        return;
      case P_IDLE:
        if (req === null) this.discard();
        return;
    }
  }

  private rearm(ms: number): void {
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
    this.timerAt = performance.now() + ms;
  }
}

/** 1 to 15 digits, or -1. */
function contentLength(v: string): number {
  if (v.length === 0 || v.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

const EMPTY = Buffer.alloc(0);
/** CR, LF or NUL in a header name or value: refused, as undici does, so no value can add a line. */
const UNSAFE = /[\r\n\0]/;
/** Also SP in the method or target, which would shift the request line. */
const UNSAFE_LINE = /[\r\n\0 ]/;
