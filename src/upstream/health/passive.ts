// Outlier detection (passive health): every try of real traffic reports its outcome here. A connect
// failure, a reset, a timeout or a response with a failure status (502–504 by default) counts
// against the target; any other response clears the count. At `consecutiveFailures` the target is
// ejected for `baseEjectionTime` × the times it has been ejected, up to `maxEjectionTime` (Envoy's
// rule), and the count of ejections is forgiven once it has gone `maxEjectionTime` without one.
// Two limits keep detection from making an outage worse: at most `maxEjectionPercent` of the
// targets are out at once (at least one, with two or more), and a single-target upstream is never
// ejected. An ejection ends on its own timer (`endEjection`), or earlier when the active check
// passes; either way it is told once, so the log has one line per change.
import type { OutlierDetectionConfig } from '../../config/schema.ts';
import { formatDuration } from '../../config/units.ts';
import { statusMatcher } from '../statusMatcher.ts';
import type { Target } from '../target.ts';

/** One target's record; carried to the same target (by address) in the Plan that replaces this one. */
export class OutlierRecord {
  /** Consecutive failures. */
  failures = 0;
  /** Times ejected since last forgiven: the next ejection lasts one base time more. */
  ejections = 0;
  /** Ejections since start, never forgiven (for /metrics and the admin API). */
  ejectedTotal = 0;
  /** performance.now() when the current ejection is due to end; 0 when not ejected. */
  ejectedUntil = 0;
  /** performance.now() when the last ejection ended. */
  lastEjectionEnd = 0;
  /** Ends the current ejection (calls OutlierDetector.endEjection). */
  timer: NodeJS.Timeout | undefined = undefined;
}

/** What the upstream hears: each start and end of an ejection, with the line for the log. */
export interface OutlierEvents {
  ejected(target: Target, change: string): void;
  back(target: Target, change: string): void;
}

export class OutlierDetector {
  /** Statuses that count as failures; null when detection is off. */
  readonly failureStatus: ((status: number) => boolean) | null;
  /** Ejections in this upstream since start. */
  ejectionsTotal = 0;
  readonly #targets: readonly Target[];
  readonly #cfg: OutlierDetectionConfig;
  readonly #events: OutlierEvents;

  constructor(targets: readonly Target[], cfg: OutlierDetectionConfig, events: OutlierEvents) {
    this.#targets = targets;
    this.#cfg = cfg;
    this.#events = events;
    this.failureStatus = cfg.enabled ? statusMatcher(cfg.statuses) : null;
  }

  /** A try on `target` got a response: a failure when its status is one of `statuses`. */
  response(target: Target, status: number): void {
    if (this.failureStatus?.(status)) this.failure(target, `status ${status}`);
    else this.success(target);
  }

  /** A try on `target` failed (connect failure, reset, timeout or a failure status); `why` goes to the log. */
  failure(target: Target, why: string): void {
    if (this.failureStatus === null) return;
    const rec = target.outlier;
    rec.failures++;
    const cfg = this.#cfg;
    if (rec.failures < cfg.consecutiveFailures || rec.ejectedUntil !== 0) return;
    const n = this.#targets.length;
    if (n < 2 || cfg.maxEjectionPercent === 0) return;
    const cap = Math.max(1, Math.floor((n * cfg.maxEjectionPercent) / 100));
    let ejected = 0;
    for (const t of this.#targets) if (t.outlier.ejectedUntil !== 0) ejected++;
    if (ejected >= cap) return;
    const failures = rec.failures;
    rec.failures = 0;
    rec.ejections++;
    rec.ejectedTotal++;
    // Counted afresh: `healthyAfter` good probes after the ejection started end it early.
    target.probeStreak = 0;
    const ms = Math.min(cfg.baseEjectionTime * rec.ejections, cfg.maxEjectionTime);
    this.#eject(target, ms);
    this.ejectionsTotal++;
    this.#events.ejected(
      target,
      `is ejected for ${formatDuration(ms)} (${failures} consecutive failures, last: ${why})`,
    );
  }

  /** A try on `target` got a response that is not a failure. */
  success(target: Target): void {
    const rec = target.outlier;
    rec.failures = 0;
    // Ejections are forgiven once the target has behaved for maxEjectionTime since the last one ended.
    if (rec.ejections > 0 && performance.now() - rec.lastEjectionEnd > this.#cfg.maxEjectionTime)
      rec.ejections = 0;
  }

  /** Ends `target`'s ejection, if it has one: its timer ran out, or the active check passed. */
  endEjection(target: Target, change: string): void {
    const rec = target.outlier;
    if (rec.ejectedUntil === 0) return;
    clearTimeout(rec.timer);
    rec.timer = undefined;
    rec.ejectedUntil = 0;
    rec.lastEjectionEnd = performance.now();
    this.#events.back(target, change);
  }

  /** Takes over the record of the same target in the Plan this one replaces; an ejection runs its course. */
  adopt(target: Target, old: Target): void {
    const rec = target.outlier;
    const o = old.outlier;
    rec.failures = o.failures;
    rec.ejections = o.ejections;
    rec.ejectedTotal = o.ejectedTotal;
    rec.lastEjectionEnd = o.lastEjectionEnd;
    if (o.ejectedUntil !== 0) this.#eject(target, o.ejectedUntil - performance.now());
  }

  /** Clears the ejection timers (the Plan is closed). */
  close(): void {
    for (const t of this.#targets) {
      clearTimeout(t.outlier.timer);
      t.outlier.timer = undefined;
    }
  }

  #eject(target: Target, ms: number): void {
    const rec = target.outlier;
    rec.ejectedUntil = performance.now() + ms;
    clearTimeout(rec.timer);
    rec.timer = setTimeout(this.#ranOut, Math.max(0, ms), target);
    rec.timer.unref();
  }

  readonly #ranOut = (target: Target): void => this.endEjection(target, 'is back: its ejection ran out');
}
