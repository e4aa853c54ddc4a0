// limits.minRequestBodyRate: a request body that arrives slower than the rate, on average, once
// minRequestBodyRateGrace has passed, is answered 408 request_timeout and its connection closed (an
// HTTP/2 stream is reset after the answer), as limits.bodyTimeout answers one that falls silent.
// bodyTimeout alone lets a client hold a request open for ever with one byte now and then.
//
// One sweep for all watched bodies (no timer per request): every `tick` it measures each body's
// bytes since its watch began against the time since then. Time during which Gatehouse itself was
// not reading (the request's buffer holds bytes nobody has taken yet: the upstream is slow to
// accept the body, or the request waits for a pool connection) is not held against the client.
// A body that has ended, or whose answer has gone out, leaves the set at the next sweep.
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../pipeline/context.ts';
import type { Runtime } from '../pipeline/runtime.ts';

export interface BodyRateOptions {
  /** Bytes per second, averaged. */
  rate: number;
  /** ms before the rate is enforced. */
  grace: number;
  /** How often bodies are measured (ms); default: a quarter of the grace, between 100 ms and 1 s. */
  tick?: number;
  /** The clock (ms); tests pass their own and call sweep() themselves. */
  now?: () => number;
}

interface Watch {
  rt: Runtime;
  ctx: RequestContext;
  /** When the watch began, and the byte count then. */
  start: number;
  bytes0: number;
  /** ms of the watch during which Gatehouse held unread bytes (not the client's fault). */
  forgiven: number;
  last: number;
}

/** What is done with a body that is too slow (answer and close: index.ts). */
export type TooSlow = (rt: Runtime, ctx: RequestContext, bytes: number, ms: number) => void;

export class BodyRateWatcher {
  readonly rate: number;
  readonly grace: number;
  readonly tick: number;
  readonly #watches = new Set<Watch>();
  readonly #tooSlow: TooSlow;
  readonly #now: () => number;
  readonly #manual: boolean;
  #timer: NodeJS.Timeout | undefined = undefined;
  /** Bodies answered 408 for their rate. */
  tooSlow = 0;

  constructor(opts: BodyRateOptions, tooSlow: TooSlow) {
    this.rate = opts.rate;
    this.grace = opts.grace;
    this.tick = opts.tick ?? Math.max(100, Math.min(1000, Math.floor(opts.grace / 4)));
    this.#tooSlow = tooSlow;
    this.#manual = opts.now !== undefined;
    this.#now = opts.now ?? performance.now.bind(performance);
  }

  /** Bodies being watched now. */
  get watching(): number {
    return this.#watches.size;
  }

  /** Watches ctx's request body from now until it ends or is answered. */
  watch(rt: Runtime, ctx: RequestContext): void {
    const now = this.#now();
    this.#watches.add({ rt, ctx, start: now, bytes0: bodyBytes(ctx.req), forgiven: 0, last: now });
    if (this.#timer === undefined && !this.#manual) {
      this.#timer = setInterval(this.sweep, this.tick);
      this.#timer.unref();
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watches.clear();
  }

  /** Measures every watched body (every `tick` ms, from the timer). */
  readonly sweep = (): void => {
    const now = this.#now();
    for (const w of this.#watches) {
      const ctx = w.ctx;
      const req = ctx.req;
      const res = ctx.res;
      if (req.complete || req.readableEnded || req.destroyed || res.headersSent || res.destroyed) {
        this.#watches.delete(w);
        continue;
      }
      // Bytes waiting in the request's buffer: Gatehouse is the one not reading.
      if (req.readableLength > 0) w.forgiven += now - w.last;
      w.last = now;
      const ms = now - w.start - w.forgiven;
      if (ms < this.grace) continue;
      const bytes = bodyBytes(req) - w.bytes0;
      if (bytes * 1000 >= this.rate * ms) continue;
      this.#watches.delete(w);
      this.tooSlow++;
      this.#tooSlow(w.rt, ctx, bytes, ms);
    }
    if (this.#watches.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  };
}

/**
 * Body bytes received so far: our HTTP/2 requests count their own (`received`, one stream of a
 * shared connection); an HTTP/1.x request has its connection to itself, whose bytesRead serves.
 */
export function bodyBytes(req: IncomingMessage): number {
  const received = (req as { received?: number }).received;
  if (received !== undefined) return received;
  return req.socket?.bytesRead ?? 0;
}
