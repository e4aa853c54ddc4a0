// Our own HTTP/1.1 keep-alive client pool for http:// targets, on pooled `net` sockets: a drop-in for
// undici's Pool as forward.ts uses it (`dispatch(opts, handler)` with the new handler API, `close()`).
//
// - Up to `connections` sockets to one target; requests beyond them wait in a FIFO queue. An idle
//   connection is taken last-in first-out, so the ones not needed idle out.
// - The handler sees what undici's Pool shows it: onRequestStart(controller, context) at dispatch
//   (so a queued request can be aborted too), then onResponseStart for every head (1xx included),
//   onResponseData, and onResponseEnd or onResponseError, exactly once. The controller is the
//   request object itself.
// - Connect failures fail the oldest queued request with the system error (ECONNREFUSED, ...) or
//   UND_ERR_CONNECT_TIMEOUT; the rest of the queue gets connections of its own.
// - An idle connection is dropped before the target's own Keep-Alive timeout (less
//   keepAliveTimeoutThreshold, as undici), so reuse rarely races the target closing it. When it does
//   (the target closed a reused connection before answering), the request ends with UND_ERR_SOCKET
//   and the retry policy decides, as with undici.

import type { Dispatcher } from 'undici';
import { H1Connection, type H1DispatchOptions, H1Request, REQUEST_CONTEXT } from './connection.ts';
import { H1PoolError } from './errors.ts';

export interface H1PoolOptions {
  /** Sockets to the target at most (undici: connections). */
  connections: number;
  connectTimeout: number;
  /** Default time for a response head, per request (0: none). */
  headersTimeout: number;
  /** Default longest silence in a response body (0: none). */
  bodyTimeout: number;
  /** How long an idle connection is kept when the target gives no Keep-Alive timeout. */
  keepAliveTimeout: number;
  /** The most a target's Keep-Alive timeout may keep a connection (default: max(keepAliveTimeout, 1000)). */
  keepAliveMaxTimeout?: number;
  /** Taken off the target's Keep-Alive timeout (default 2000 ms, as undici). */
  keepAliveTimeoutThreshold?: number;
  /** Largest response head, trailers included (default 64 KiB). */
  maxHeaderSize?: number;
}

export class H1Pool {
  /** Host and port to connect to (an IPv6 address without brackets). */
  readonly host: string;
  readonly port: number;
  /** host:port, sent as Host when the request has none. */
  readonly authority: string;
  readonly connections: number;
  readonly connectTimeout: number;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly keepAliveTimeout: number;
  readonly keepAliveMaxTimeout: number;
  readonly keepAliveTimeoutThreshold: number;
  readonly maxHeaderSize: number;

  /** Every connection of the pool (connecting, busy or idle). */
  readonly all: H1Connection[] = [];
  /** Idle connections, the most recently used last. */
  readonly idle: H1Connection[] = [];
  connecting = 0;
  /** Connections whose response has just ended and that may take the next request. */
  finishing = 0;
  /** Requests waiting in the queue (aborted ones leave it at once, though their node stays until reached). */
  queued = 0;
  #head: H1Request | null = null;
  #tail: H1Request | null = null;
  #closing = false;
  #destroyed = false;
  #closed: Promise<void> | null = null;
  #resolveClosed: (() => void) | null = null;

  constructor(origin: string | URL, opts: H1PoolOptions) {
    const url = typeof origin === 'string' ? new URL(origin) : origin;
    if (url.protocol !== 'http:') throw new TypeError(`H1Pool takes http:// origins, not ${url.protocol}`);
    this.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? 80 : Number(url.port);
    this.authority = url.host;
    this.connections = opts.connections;
    this.connectTimeout = opts.connectTimeout;
    this.headersTimeout = opts.headersTimeout;
    this.bodyTimeout = opts.bodyTimeout;
    this.keepAliveTimeout = opts.keepAliveTimeout;
    this.keepAliveMaxTimeout = opts.keepAliveMaxTimeout ?? Math.max(opts.keepAliveTimeout, 1000);
    this.keepAliveTimeoutThreshold = opts.keepAliveTimeoutThreshold ?? 2000;
    this.maxHeaderSize = opts.maxHeaderSize ?? 64 * 1024;
  }

  /** Connections open or opening. */
  get size(): number {
    return this.all.length;
  }

  get closed(): boolean {
    return this.#closing || this.#destroyed;
  }

  /**
   * Sends one request. The handler's callbacks may run before this returns (an idle connection is
   * used at once; a refused dispatch reports through onResponseError). False when the pool is
   * closed or destroyed.
   */
  dispatch(opts: H1DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closing || this.#destroyed) {
      handler.onResponseError?.(
        null as unknown as Dispatcher.DispatchController,
        this.#destroyed
          ? new H1PoolError('UND_ERR_DESTROYED', 'The client is destroyed')
          : new H1PoolError('UND_ERR_CLOSED', 'The client is closed'),
      );
      return false;
    }
    const req = new H1Request(this, opts, handler);
    try {
      handler.onRequestStart?.(req, REQUEST_CONTEXT);
    } catch (err) {
      req.fail(err as Error);
      return false;
    }
    if (req.done) return true; // aborted at once
    const conn = this.idle.pop();
    if (conn !== undefined) {
      conn.start(req);
      return true;
    }
    this.#enqueue(req);
    if (this.connecting + this.finishing < this.queued && this.all.length < this.connections) this.#connect();
    return true;
  }

  #enqueue(req: H1Request): void {
    req.enqueued();
    this.queued++;
    if (this.#tail === null) this.#head = req;
    else this.#tail.next = req;
    this.#tail = req;
  }

  /** The oldest request still waiting, taken out of the queue. */
  #dequeue(): H1Request | null {
    let req = this.#head;
    while (req !== null) {
      const next = req.next;
      req.next = null;
      if (req.queued) {
        this.#head = next;
        if (next === null) this.#tail = null;
        this.queued--;
        req.dequeued();
        return req;
      }
      req = next; // aborted while waiting
    }
    this.#head = this.#tail = null;
    return null;
  }

  #connect(): void {
    const conn = new H1Connection(this);
    conn.index = this.all.length;
    this.all.push(conn);
    this.connecting++;
  }

  // --- called by connections ------------------------------------------------------------------------

  /** A new connection is up. */
  connected(conn: H1Connection): void {
    this.connecting--;
    this.release(conn);
  }

  /** A connection is free for the next request (after a reusable response, or a refused request). */
  release(conn: H1Connection): void {
    const next = this.#dequeue();
    if (next !== null) {
      conn.start(next);
      return;
    }
    if (this.#closing || this.#destroyed) {
      conn.discard();
      return;
    }
    conn.idle();
    this.idle.push(conn);
  }

  /** A connection could not be made: the oldest waiting request fails with why. */
  connectFailed(conn: H1Connection, err: Error): void {
    if (conn.gone) return;
    this.connecting--;
    this.#drop(conn);
    conn.socket.destroy();
    const req = this.#dequeue();
    if (req !== null) req.fail(err);
    this.#refill();
  }

  /** A connection is closing or closed: out of the pool. */
  remove(conn: H1Connection): void {
    if (conn.gone) return;
    if (!conn.connected) this.connecting--;
    this.#drop(conn);
    this.#refill();
  }

  #drop(conn: H1Connection): void {
    conn.gone = true;
    const all = this.all;
    const i = conn.index;
    const last = all.pop() as H1Connection;
    if (last !== conn) {
      all[i] = last;
      last.index = i;
    }
    conn.index = -1;
    const k = this.idle.indexOf(conn);
    if (k >= 0) this.idle.splice(k, 1);
  }

  /** New connections for requests still waiting; or, once closing and empty, closed. */
  #refill(): void {
    if (this.#destroyed) {
      if (this.all.length === 0) this.#resolveClosed?.();
      return;
    }
    while (this.connecting + this.finishing < this.queued && this.all.length < this.connections)
      this.#connect();
    if (this.#closing && this.all.length === 0 && this.queued === 0) this.#resolveClosed?.();
  }

  // --- closing --------------------------------------------------------------------------------------

  /** Takes no more requests; finishes the queued and in-flight ones, then closes every connection. */
  close(): Promise<void> {
    if (this.#closed !== null) return this.#closed;
    this.#closing = true;
    this.#closed = new Promise<void>((resolve) => {
      this.#resolveClosed = resolve;
    });
    for (const conn of this.idle.slice()) conn.discard();
    if (this.all.length === 0 && this.queued === 0) this.#resolveClosed?.();
    return this.#closed;
  }

  /** Ends every request, queued or in flight, with UND_ERR_DESTROYED, and every connection. */
  destroy(): Promise<void> {
    if (this.#destroyed) return this.#closed ?? Promise.resolve();
    this.#destroyed = true;
    const err = new H1PoolError('UND_ERR_DESTROYED', 'The client is destroyed');
    if (this.#closed === null) {
      this.#closed = new Promise<void>((resolve) => {
        this.#resolveClosed = resolve;
      });
    }
    for (let req = this.#dequeue(); req !== null; req = this.#dequeue()) req.fail(err);
    for (const conn of this.all.slice()) conn.destroy(err);
    if (this.all.length === 0) this.#resolveClosed?.();
    return this.#closed;
  }
}
