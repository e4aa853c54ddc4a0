// The circuit breaker: a fast 503 (`upstream_overflow`, Retry-After: 1) instead of a queue that grows
// until clients time out. `maxConnectionsPerTarget` bounds each target's pool; when all of a
// target's connections are busy a request waits in its pool's queue, and `maxPending` bounds how
// many wait across the upstream. `maxRequests` bounds the upstream's requests in flight in all.
import type { UpstreamConfig } from '../config/schema.ts';
import type { Target } from './target.ts';

export class CircuitBreaker {
  readonly #targets: readonly Target[];
  readonly #perTarget: number;
  readonly #maxPending: number;
  readonly #maxRequests: number;

  constructor(
    targets: readonly Target[],
    cfg: UpstreamConfig['circuitBreaker'],
    maxConnectionsPerTarget: number,
  ) {
    this.#targets = targets;
    this.#perTarget = maxConnectionsPerTarget;
    this.#maxPending = cfg.maxPending;
    this.#maxRequests = cfg.maxRequests ?? Number.POSITIVE_INFINITY;
  }

  /** True when a new request to `target` must be refused; `inFlight`: the upstream's requests in flight. */
  overflowing(target: Target, inFlight: number): boolean {
    if (inFlight >= this.#maxRequests) return true;
    const per = this.#perTarget;
    if (target.active < per) return false;
    // Every connection to this target is busy: the request would wait in the pool's queue.
    let queued = 0;
    for (const t of this.#targets) if (t.active > per) queued += t.active - per;
    return queued >= this.#maxPending;
  }
}
