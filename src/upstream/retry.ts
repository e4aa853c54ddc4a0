// Retries (docs/resilience.md#retries): whether a failed try goes to another target, decided here in
// one order:
//   1. the failure's kind: its reason's `retryOn` column in the error table (pipeline/errors.ts), or
//      `status` for a response whose status is in `retry.statuses`;
//   2. tries left (`retry.attempts`, the first included) and the response deadline not passed;
//   3. the policy: the kind is in `retry.on`; the body can be sent again; the method is idempotent,
//      or `retry.nonIdempotent` is set, or it was a connect failure (nothing reached the target);
//   4. the budget (retryBudget.ts), which a connect failure does not draw on;
//   5. a target not tried yet whose circuit is closed: Upstream.nextTarget, the one entry point.

import type { RetryConfig } from '../config/schema.ts';
import { RETRY_ON, type Reason, type RetryOn } from '../pipeline/errors.ts';
import { RetryBudget } from './retryBudget.ts';
import { statusMatcher } from './statusMatcher.ts';

/** Why a try failed, as far as retrying goes: a `retry.on` condition, or a status in `retry.statuses`. */
export type RetryKind = RetryOn | 'status';

/** The retry kind of an upstream failure's reason, or undefined when that reason is never retried. */
export function retryKindOf(reason: Reason): RetryKind | undefined {
  return RETRY_ON[reason];
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** An upstream's retry settings and budget, built once per Plan. */
export class RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  /** Statuses that are retried, or null when none are. */
  readonly statuses: ((status: number) => boolean) | null;
  /** Every request to the upstream deposits here (`request()`); retries draw on it. */
  readonly budget: RetryBudget;
  /** Retries the budget refused, since start. */
  denied = 0;
  readonly #on: ReadonlySet<RetryKind>;
  readonly #nonIdempotent: boolean;

  constructor(cfg: RetryConfig) {
    this.attempts = cfg.attempts;
    this.statuses = cfg.attempts > 1 && cfg.statuses.length > 0 ? statusMatcher(cfg.statuses) : null;
    this.#on = new Set(cfg.on);
    this.#nonIdempotent = cfg.nonIdempotent;
    this.budget = new RetryBudget(cfg.budget.percent, cfg.budget.minRetries, cfg.budget.window);
  }

  /**
   * May a request that has made `tries` tries, the last failing with `kind`, try again before
   * `deadline` (performance.now())? A yes has taken a retry from the budget; a no for want of
   * budget is counted in `denied`.
   */
  allows(tries: number, kind: RetryKind, method: string, bodyReplayable: boolean, deadline: number): boolean {
    if (tries >= this.attempts) return false;
    if (deadline - performance.now() < 1) return false;
    if (kind === 'status' ? this.statuses === null : !this.#on.has(kind)) return false;
    if (!bodyReplayable) return false;
    // A connect failure reached no target, so retrying it adds no load anywhere: no method check, no budget.
    if (kind === 'connect-failure') return true;
    if (!this.#nonIdempotent && !IDEMPOTENT.has(method)) return false;
    if (this.budget.tryRetry()) return true;
    this.denied++;
    return false;
  }
}
