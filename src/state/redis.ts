// Shared state in Redis (ARCHITECTURE.md §6, §8): one client per Redis URL in a running Gatehouse,
// shared by every middleware that keeps state there and by every Plan a reload makes. Middlewares
// lease it (acquireRedis) and give it back when their Plan closes; the last lease closes it.
// node-redis (`@redis/client`) is imported only when the first lease is taken, so a Gatehouse with
// no Redis configured loads no Redis code.
//
// Every call is given `redis.timeout` and never waits longer: it resolves with the reply or with
// STORE_FAILED (a timeout, no connection, a full queue, an error), and the caller decides what a
// failure means (rateLimit: its onStoreError). A circuit sits in front: after FAILURES_TO_OPEN
// failures in a row it opens, calls fail at once without touching Redis for a cool-down (1 s,
// doubling up to 30 s while Redis stays away), then one call probes; a reply closes it again. The
// client reconnecting also ends the cool-down early. One line is logged when it opens and one
// when it closes; the figures are in redisStats() for /metrics.
//
// The rate-limit decision is one Lua script (GCRA, below) sent by EVALSHA, and by EVAL when the
// server answers NOSCRIPT (after a restart or SCRIPT FLUSH; EVAL caches it again).
import { createHash } from 'node:crypto';
import type { RedisConfig } from '../config/schema.ts';

export type RedisSettings = NonNullable<RedisConfig>;

/** What a call resolves with when the store could not answer in time (never a Redis reply). */
export const STORE_FAILED: unique symbol = Symbol('store failed');
export type StoreFailed = typeof STORE_FAILED;

/** Consecutive failures that open the circuit. */
export const FAILURES_TO_OPEN = 3;
/** The first cool-down of an open circuit, and the longest it doubles to. */
export const COOL_DOWN_MS = 1000;
export const MAX_COOL_DOWN_MS = 30_000;
/** Commands waiting in the client (written or not) at most; beyond it a call fails at once. */
const MAX_QUEUE = 10_000;

/** The part of node-redis this module uses. */
interface Client {
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  destroy(): void;
  unref(): void;
  on(event: string, listener: (arg: unknown) => void): unknown;
  readonly isReady: boolean;
}

type CircuitState = 'closed' | 'open' | 'half-open';

/** One Redis's figures: what /metrics shows (see redisStats). */
export interface RedisStats {
  /** The URL with any password replaced by `***`. */
  readonly url: string;
  /** Connected and ready now. */
  readonly connected: boolean;
  readonly circuit: CircuitState;
  /** Calls sent to Redis (probes included; not the ones the open circuit answered). */
  readonly calls: number;
  /** Calls that got no answer within redis.timeout. */
  readonly timeouts: number;
  /** Calls that failed otherwise: no connection, the client's queue full, a socket error. */
  readonly errors: number;
  /** Calls Redis answered with an error reply (it is reachable: these do not open the circuit). */
  readonly replyErrors: number;
  /** Calls failed at once because the circuit was open. */
  readonly shortCircuited: number;
  /** Times the circuit opened (from closed; a failed probe re-opening it does not count). */
  readonly circuitOpens: number;
}

/** A Lua script with its SHA-1, sent by EVALSHA. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

const FAILED: Promise<StoreFailed> = Promise.resolve(STORE_FAILED);

/** Replaces a password in a redis:// URL, for logs and metrics. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return 'redis://(invalid)';
  }
}

function defaultSay(m: string): void {
  process.stderr.write(`[gatehouse] ${m}\n`);
}

export class RedisStore {
  readonly url: string;
  readonly label: string;
  readonly timeout: number;
  readonly #say: (m: string) => void;
  #client: Client | null = null;
  /** node-redis's ErrorReply class, once loaded. */
  #ErrorReply: (new (...a: never[]) => Error) | null = null;
  /**
   * Resolves when the first connection attempt ends, either way (never rejects): calls made while
   * Gatehouse is starting wait for it (within their timeout) instead of failing at once.
   */
  readonly #firstAttempt: Promise<void>;
  #attempted: () => void = () => {};
  #firstAttemptDone = false;
  #closed = false;

  #state: CircuitState = 'closed';
  #failures = 0;
  #openUntil = 0;
  #coolDown = COOL_DOWN_MS;

  #calls = 0;
  #timeouts = 0;
  #errors = 0;
  #replyErrors = 0;
  #shortCircuited = 0;
  #circuitOpens = 0;
  #nextReplyErrorLog = 0;

  constructor(settings: RedisSettings, say: (m: string) => void = defaultSay) {
    this.url = settings.url;
    this.label = redactUrl(settings.url);
    this.timeout = settings.timeout;
    this.#say = say;
    this.#firstAttempt = new Promise((resolve) => {
      this.#attempted = resolve;
    });
    void this.#start();
  }

  async #start(): Promise<void> {
    let mod: typeof import('@redis/client');
    try {
      mod = await import('@redis/client');
    } catch (err) {
      this.#say(`redis ${this.label}: cannot load @redis/client (${(err as Error).message})`);
      this.#firstAttemptDone = true;
      this.#attempted();
      return;
    }
    if (this.#closed) return;
    this.#ErrorReply = mod.ErrorReply as unknown as new (...a: never[]) => Error;
    const client = mod.createClient({
      url: this.url,
      // Without a connection a call fails at once instead of waiting in a queue.
      disableOfflineQueue: true,
      commandsQueueMaxLength: MAX_QUEUE,
      socket: {
        connectTimeout: Math.max(1000, this.timeout),
        // Reconnect soon after Redis comes back: 50 ms, doubling to 1 s between tries.
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
      },
    }) as unknown as Client;
    this.#client = client;
    const attempted = () => {
      if (this.#firstAttemptDone) return;
      this.#firstAttemptDone = true;
      this.#attempted();
    };
    // node-redis emits 'error' for every failed (re)connection; the circuit reports what matters.
    client.on('error', attempted);
    client.on('ready', () => {
      attempted();
      // Back after an outage: the next call probes instead of waiting out the cool-down.
      if (this.#state === 'open') this.#openUntil = 0;
    });
    // The connection never keeps the process alive by itself (the listeners do).
    client.unref();
    client.connect().catch(() => {});
  }

  /**
   * Runs `script` on `key` with `args`: the reply, or STORE_FAILED when Redis did not answer
   * within the timeout, could not be reached, or the circuit is open. Never rejects.
   */
  evalScript(s: Script, key: string, args: readonly string[]): Promise<unknown> {
    if (this.#state !== 'closed' && !this.#admitProbe()) {
      this.#shortCircuited++;
      return FAILED;
    }
    this.#calls++;
    return new Promise((resolve) => {
      let settled = false;
      const expire = () => {
        if (settled) return;
        settled = true;
        this.#timeouts++;
        this.#failed('timeout');
        resolve(STORE_FAILED);
      };
      // Timers run before the loop reads sockets: on a busy event loop the timer could fire with the
      // reply already waiting unread. Reading what has arrived first (setImmediate runs after the
      // poll phase) counts a late loop as the loop's delay, not as Redis's.
      const timer = setTimeout(() => setImmediate(expire), this.timeout);
      const sent = this.#firstAttemptDone
        ? this.#send(s, key, args)
        : this.#firstAttempt.then(() => this.#send(s, key, args));
      sent.then(
        (reply) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.#succeeded();
          resolve(reply);
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (this.#ErrorReply !== null && err instanceof this.#ErrorReply) {
            // Redis answered: it is reachable, whatever was wrong with this call (a full memory,
            // an ACL without EVALSHA, a key of another type). Logged, at most once a minute.
            this.#replyErrors++;
            this.#succeeded();
            const now = performance.now();
            if (now >= this.#nextReplyErrorLog) {
              this.#nextReplyErrorLog = now + 60_000;
              this.#say(
                `redis ${this.label}: error reply "${err.message}"; onStoreError decides such calls ` +
                  '(logged at most once a minute)',
              );
            }
          } else {
            this.#errors++;
            this.#failed(err instanceof Error ? err.message : String(err));
          }
          resolve(STORE_FAILED);
        },
      );
    });
  }

  #send(s: Script, key: string, args: readonly string[]): Promise<unknown> {
    const client = this.#client;
    if (client === null || this.#closed) return Promise.reject(new Error('closed'));
    return client.sendCommand(['EVALSHA', s.sha, '1', key, ...args]).catch((err: unknown) => {
      if (this.#ErrorReply !== null && err instanceof this.#ErrorReply && err.message.startsWith('NOSCRIPT'))
        return client.sendCommand(['EVAL', s.source, '1', key, ...args]);
      throw err;
    });
  }

  /** With the circuit not closed: whether this call may go to Redis as the one probe. */
  #admitProbe(): boolean {
    if (this.#state === 'half-open' || performance.now() < this.#openUntil) return false;
    this.#state = 'half-open';
    return true;
  }

  #succeeded(): void {
    this.#failures = 0;
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#coolDown = COOL_DOWN_MS;
    this.#say(`redis ${this.label}: answering again; decisions come from Redis (circuit closed)`);
  }

  #failed(why: string): void {
    if (this.#state === 'closed') {
      if (++this.#failures < FAILURES_TO_OPEN) return;
      this.#state = 'open';
      this.#circuitOpens++;
      this.#openUntil = performance.now() + this.#coolDown;
      this.#say(
        `redis ${this.label}: ${this.#failures} calls in a row failed (${why}); circuit open, ` +
          `deciding by onStoreError without Redis, probing again in ${this.#coolDown / 1000} s`,
      );
      return;
    }
    // A failed probe (or a call sent before the circuit opened): wait longer before the next one.
    if (this.#state === 'half-open') this.#coolDown = Math.min(MAX_COOL_DOWN_MS, this.#coolDown * 2);
    this.#state = 'open';
    this.#openUntil = performance.now() + this.#coolDown;
  }

  get stats(): RedisStats {
    return {
      url: this.label,
      connected: this.#client?.isReady ?? false,
      circuit: this.#state,
      calls: this.#calls,
      timeouts: this.#timeouts,
      errors: this.#errors,
      replyErrors: this.#replyErrors,
      shortCircuited: this.#shortCircuited,
      circuitOpens: this.#circuitOpens,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const c = this.#client;
    this.#client = null;
    try {
      c?.destroy();
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------- the process's registry
interface Entry {
  store: RedisStore;
  refs: number;
}
const stores = new Map<string, Entry>();

/** A share of a RedisStore; release() once, when the Plan that took it closes. */
export interface RedisLease {
  readonly store: RedisStore;
  release(): void;
}

/**
 * The client for `settings.url`, created (and connecting) on the first lease. `redis` is a
 * restart-only key, so every lease of a running Gatehouse names the same URL and timeout.
 */
export function acquireRedis(settings: RedisSettings, say?: (m: string) => void): RedisLease {
  let e = stores.get(settings.url);
  if (e === undefined) {
    e = { store: new RedisStore(settings, say), refs: 0 };
    stores.set(settings.url, e);
  }
  e.refs++;
  const entry = e;
  let released = false;
  return {
    store: entry.store,
    release() {
      if (released) return;
      released = true;
      if (--entry.refs > 0) return;
      entry.store.close();
      if (stores.get(settings.url) === entry) stores.delete(settings.url);
    },
  };
}

/**
 * The figures of every Redis this process uses now (none without Redis). For /metrics:
 *   gatehouse_redis_up{redis}                      gauge    1 when connected
 *   gatehouse_redis_circuit_open{redis}            gauge    1 when open or half-open
 *   gatehouse_redis_circuit_opens_total{redis}     counter
 *   gatehouse_redis_calls_total{redis}             counter
 *   gatehouse_redis_errors_total{redis,kind}       counter  kind: timeout | error | reply
 *   gatehouse_redis_short_circuited_total{redis}   counter
 */
export function redisStats(): RedisStats[] {
  return [...stores.values()].map((e) => e.store.stats);
}

// ---------------------------------------------------------------- the rate-limit script
// GCRA, the token bucket kept as one number: the theoretical arrival time (TAT) of the next
// request, in microseconds of the Redis server's clock (TIME: every node and process reads the
// same clock, whatever their own say). A bucket of `burst` tokens refilled one per `interval` µs
// holds burst - (tat - now) / interval tokens; a request takes one when at least one is there. The
// key expires when the bucket would be full again, so a missing key is a full bucket.
// Times count from 2023-11-14 (1.7e9 s), so a double keeps them to 1/64 µs for decades, and are
// stored with three decimals: intervals down to a tenth of a microsecond (ten million requests a
// second per key) still add up.
// KEYS[1] the bucket; ARGV[1] interval (µs, may be fractional); ARGV[2] burst.
// Returns { allowed (1|0), remaining tokens after this request, µs until one token is there }.
export const GCRA = script(`
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local depth = tonumber(ARGV[2]) * interval
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local after = tat + interval
if after - now > depth then
  return {0, 0, math.ceil(after - depth - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', after), 'PX', math.max(1, math.ceil((after - now) / 1000)))
return {1, math.floor((depth - (after - now)) / interval), 0}
`);

/** A rate-limit decision from Redis. */
export interface GcraResult {
  allowed: boolean;
  remaining: number;
  /** Microseconds until the next request would be allowed (0 when this one was). */
  retryUs: number;
}

/** One decision: the result, or STORE_FAILED. `args` is [interval µs, burst] as strings. */
export function gcra(
  store: RedisStore,
  key: string,
  args: readonly string[],
): Promise<GcraResult | StoreFailed> {
  return store.evalScript(GCRA, key, args).then(gcraResult);
}

function gcraResult(reply: unknown): GcraResult | StoreFailed {
  if (!Array.isArray(reply) || reply.length !== 3) return STORE_FAILED;
  return { allowed: reply[0] === 1, remaining: Number(reply[1]), retryUs: Number(reply[2]) };
}
