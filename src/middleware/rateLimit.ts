// `rateLimit`: a token bucket per key (client address, a header, or the route as a whole), kept in
// process. `rate` tokens per `per`, up to `burst` at once. A refused request gets 429 with
// Retry-After and the RateLimit-* fields of draft-ietf-httpapi-ratelimit-headers.
import type { RateLimitConfig } from '../config/schema.ts';
import { requestKey } from '../routing/requestKey.ts';
import type { MiddlewareKind } from './types.ts';

interface Bucket {
  tokens: number;
  at: number;
}

export const rateLimit: MiddlewareKind<RateLimitConfig> = {
  create(name, config) {
    const perMs = config.rate / config.per;
    const burst = config.burst ?? Math.max(1, Math.ceil(config.rate));
    const keyOf = requestKey(config.key);
    // Map iteration order is insertion order: re-inserting on use makes the first key the least recently used.
    const buckets = new Map<string, Bucket>();
    return {
      name,
      onRequest(ctx) {
        // A request without the header shares one bucket with the others that lack it.
        const key = keyOf(ctx) ?? '';
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
        const retryAfter = Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
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
      },
    };
  },
};
