// `rateLimit`: a token bucket per key (client address, a header, or the route as a whole). `rate`
// tokens per `per`, up to `burst` at once. A refused request gets 429 with Retry-After and the
// RateLimit-* fields of draft-ietf-httpapi-ratelimit-headers.
//
// store: memory keeps the buckets in this process. store: redis keeps one bucket per key in Redis
// for every process and node, decided by one atomic script per request (src/state/redis.ts, GCRA on
// Redis's clock); when Redis cannot answer within redis.timeout (or its circuit is open),
// onStoreError decides: allow, deny (503 store_unavailable), or local (this process's own bucket).
import { createHash } from 'node:crypto';
import type { RateLimitConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { requestKey } from '../routing/requestKey.ts';
import {
  acquireRedis,
  type GcraResult,
  gcra,
  type RedisLease,
  STORE_FAILED,
  type StoreFailed,
} from '../state/redis.ts';
import type { LocalResponse, MiddlewareKind } from './types.ts';

interface Bucket {
  tokens: number;
  at: number;
}

/** Keys longer than this (or starting with '#') go to Redis as a hash, so a header cannot make huge keys. */
const MAX_RAW_KEY = 100;

function refusal(retryAfter: number, burst: number): LocalResponse {
  return {
    status: 429,
    reason: 'rate_limited',
    headers: {
      'retry-after': String(retryAfter),
      'ratelimit-limit': String(burst),
      'ratelimit-remaining': '0',
      'ratelimit-reset': String(retryAfter),
    },
  };
}

/** onStoreError: deny. A new object each time: whoever answers may add to its headers. */
function storeUnavailable(): LocalResponse {
  return { status: 503, reason: 'store_unavailable', headers: { 'retry-after': '1' } };
}

/** The per-process buckets: take(key) answers undefined (allowed) or the 429. */
function localBuckets(
  config: RateLimitConfig,
  perMs: number,
  burst: number,
): (key: string) => LocalResponse | undefined {
  // Map iteration order is insertion order: re-inserting on use makes the first key the least recently used.
  const buckets = new Map<string, Bucket>();
  return (key) => {
    const now = performance.now();
    let b = buckets.get(key);
    if (b === undefined) {
      b = { tokens: burst, at: now };
      if (buckets.size >= config.maxKeys) buckets.delete(buckets.keys().next().value as string);
    } else {
      buckets.delete(key);
      b.tokens = Math.min(burst, b.tokens + (now - b.at) * perMs);
      b.at = now;
    }
    buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    return refusal(Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)), burst);
  };
}

/** The Redis key part for a request key: as it is when short, else a SHA-256 (never both forms for one key). */
export function redisKeyPart(key: string): string {
  if (key.length <= MAX_RAW_KEY && !key.startsWith('#')) return key;
  return `#${createHash('sha256').update(key).digest('base64url')}`;
}

/** How many rateLimit middlewares answered without Redis, by name and onStoreError action. */
const fallbacks = new Map<string, number>();

/**
 * Decisions made without Redis (it failed or its circuit was open), for /metrics:
 *   gatehouse_ratelimit_store_fallbacks_total{middleware,action}  counter  action: allow | deny | local
 */
export function rateLimitFallbacks(): { middleware: string; action: string; count: number }[] {
  return [...fallbacks].map(([k, count]) => {
    const [middleware, action] = k.split('\0');
    return { middleware, action, count };
  });
}

export const rateLimit: MiddlewareKind<RateLimitConfig> = {
  create(name, config, env) {
    const perMs = config.rate / config.per;
    const burst = config.burst ?? Math.max(1, Math.ceil(config.rate));
    const keyOf = requestKey(config.key);
    const local = localBuckets(config, perMs, burst);
    if (config.store === 'memory') {
      return {
        name,
        // A request without the header shares one bucket with the others that lack it.
        onRequest: (ctx) => local(keyOf(ctx) ?? ''),
      };
    }

    // store: redis. The top-level redis block (validation requires it) comes through BuildEnv.
    const redis = env.redis;
    if (redis == null)
      throw new Error(
        `middleware ${name}: rateLimit store: redis needs the top-level redis block in the running config ` +
          '(redis is read at start: adding it takes a restart)',
      );
    const prefix = `${redis.keyPrefix}rl:${name}:`;
    const args = [String((config.per * 1000) / config.rate), String(burst)];
    const action = config.onStoreError;
    const fallbackKey = `${name}\0${action}`;
    fallbacks.set(fallbackKey, fallbacks.get(fallbackKey) ?? 0);
    // A running Gatehouse connects now; explain and validate (no caches) never reach onRequest, and
    // a Plan's closing gives the lease back.
    let lease: RedisLease | null = env.caches !== null ? acquireRedis(redis) : null;
    let closed = false;
    env.onClose(() => {
      closed = true;
      lease?.release();
      lease = null;
    });

    const decided = (r: GcraResult): LocalResponse | undefined =>
      r.allowed ? undefined : refusal(Math.max(1, Math.ceil(r.retryUs / 1_000_000)), burst);
    const withoutStore = (key: string): LocalResponse | undefined => {
      fallbacks.set(fallbackKey, (fallbacks.get(fallbackKey) ?? 0) + 1);
      if (action === 'allow') return undefined;
      if (action === 'deny') return storeUnavailable();
      return local(key);
    };

    return {
      name,
      onRequest(ctx: RequestContext) {
        const key = keyOf(ctx) ?? '';
        if (lease === null) {
          if (closed) return withoutStore(key);
          lease = acquireRedis(redis);
        }
        return gcra(lease.store, prefix + redisKeyPart(key), args).then((r: GcraResult | StoreFailed) =>
          r === STORE_FAILED ? withoutStore(key) : decided(r),
        );
      },
    };
  },
};
