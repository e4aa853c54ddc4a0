// An upstream: its targets (each with a pool), the balancer over them, and the policies that keep
// one failing target invisible to clients: active checks, passive outlier detection (ejection with
// a growing cool-down, capped to a share of the upstream), retries with a budget, a circuit breaker
// (max requests, max pending), backup targets and slow start. Built once per Plan; target state is
// carried over from the previous Plan on reload.
import { readFileSync } from 'node:fs';
import type { RetryConfig, UpstreamConfig } from '../config/schema.ts';
import { formatDuration } from '../config/units.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Reason } from '../pipeline/errors.ts';
import { balancers } from './balancers/index.ts';
import type { Balancer, PickInput } from './balancers/types.ts';
import { startActiveChecks, statusMatcher } from './health/active.ts';
import { RetryBudget } from './retryBudget.ts';
import { Target, type TargetTls } from './target.ts';

/** Told once per change of a target's state: `is DOWN (status 500)`, `is ejected for 30s (...)`. */
export type TargetListener = (upstream: Upstream, target: Target, change: string) => void;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export type RetryKind = 'connect-failure' | 'reset' | 'timeout';

/** Which retry condition an upstream failure is, if any. */
export function retryKind(reason: Reason): RetryKind | undefined {
  switch (reason) {
    case 'upstream_connect_failed':
    case 'upstream_connect_timeout':
    case 'upstream_tls_failed':
      return 'connect-failure';
    case 'upstream_reset':
      return 'reset';
    case 'upstream_timeout':
      return 'timeout';
    default:
      return undefined;
  }
}

export class Upstream {
  readonly name: string;
  readonly targets: readonly Target[];
  readonly balancer: Balancer;
  /** Over the backup targets, asked only when no primary is available; null without backups. */
  readonly backupBalancer: Balancer | null;
  readonly passHostHeader: boolean;
  readonly responseTimeout: number;
  readonly perTryTimeout: number;
  /**
   * undici's header timeout ticks once a second or so; an explicitly configured per-try timeout
   * gets a timer of our own so that 150ms means 150ms.
   */
  readonly preciseTryTimeout: boolean;
  readonly idleTimeout: number;
  readonly connectTimeout: number;
  /** WebSocket tunnels: idle and maximum lifetime (0: none). */
  readonly tunnelIdleTimeout: number;
  readonly tunnelMaxLifetime: number;
  readonly loadBalancer: string;
  readonly hashValue: ((ctx: RequestContext) => string | undefined) | undefined;
  readonly healthCheck: UpstreamConfig['healthCheck'];
  readonly retry: RetryConfig;
  readonly retryOn: ReadonlySet<RetryKind>;
  /** Statuses that are retried, or null when none are. */
  readonly retryStatus: ((status: number) => boolean) | null;
  /** Statuses outlier detection counts as failures, or null when it is off. */
  readonly failureStatus: ((status: number) => boolean) | null;
  readonly outlier: UpstreamConfig['outlierDetection'];
  readonly maxPending: number;
  readonly maxRequests: number;
  readonly maxConnectionsPerTarget: number;
  readonly slowStart: number;
  /** Client requests in flight through this upstream (a request with retries counts once). */
  active = 0;
  readonly budget: RetryBudget;
  /** Totals since the Plan started, for the log and the admin API. */
  retries = 0;
  retriesDenied = 0;
  ejectionsTotal = 0;
  overflows = 0;
  #listener: TargetListener | null = null;
  #stopChecks: (() => void) | undefined;

  constructor(name: string, cfg: UpstreamConfig) {
    this.name = name;
    this.loadBalancer = cfg.loadBalancer;
    this.passHostHeader = cfg.passHostHeader;
    this.responseTimeout = cfg.timeouts.response;
    this.perTryTimeout = Math.min(cfg.retry.perTryTimeout ?? cfg.timeouts.response, cfg.timeouts.response);
    this.preciseTryTimeout = cfg.retry.perTryTimeout !== undefined;
    this.idleTimeout = cfg.timeouts.idle;
    this.connectTimeout = cfg.timeouts.connect;
    this.tunnelIdleTimeout = cfg.timeouts.tunnelIdle;
    this.tunnelMaxLifetime = cfg.timeouts.tunnelMaxLifetime;
    this.maxConnectionsPerTarget = cfg.maxConnectionsPerTarget;
    const read = (file: string | undefined, key: string) => {
      if (file === undefined) return undefined;
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        throw new Error(
          `upstreams.${name}.tls.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`,
        );
      }
    };
    const tls: TargetTls = {
      ca: read(cfg.tls.caFile, 'caFile'),
      servername: cfg.tls.servername,
      cert: read(cfg.tls.certFile, 'certFile'),
      key: read(cfg.tls.keyFile, 'keyFile'),
      rejectUnauthorized: !cfg.tls.insecureSkipVerify,
      http2: cfg.http2,
    };
    this.targets = cfg.targets.map(
      (t) =>
        new Target(t.url, {
          tls,
          weight: t.weight,
          backup: t.backup,
          drain: t.drain,
          maxConnections: cfg.maxConnectionsPerTarget,
          connectTimeout: cfg.timeouts.connect,
          headersTimeout: this.perTryTimeout,
          bodyTimeout: cfg.timeouts.idle,
          keepAliveTimeout: cfg.timeouts.keepAlive,
        }),
    );
    for (const t of this.targets) t.onEjectionEnd = this.#ejectionEnded;
    const primaries = this.targets.filter((t) => !t.backup);
    const backups = this.targets.filter((t) => t.backup);
    const kind = balancers[cfg.loadBalancer];
    this.balancer = kind.create(primaries);
    this.backupBalancer = backups.length > 0 ? kind.create(backups) : null;
    this.hashValue =
      cfg.loadBalancer === 'consistentHash' ? hashKeyFunction(cfg.hashKey ?? 'path') : undefined;
    this.healthCheck = cfg.healthCheck;
    this.retry = cfg.retry;
    this.retryOn = new Set(cfg.retry.attempts > 1 ? cfg.retry.on : []);
    this.retryStatus =
      cfg.retry.attempts > 1 && cfg.retry.statuses.length > 0 ? statusMatcher(cfg.retry.statuses) : null;
    this.outlier = cfg.outlierDetection;
    this.failureStatus = cfg.outlierDetection.enabled ? statusMatcher(cfg.outlierDetection.statuses) : null;
    this.maxPending = cfg.circuitBreaker.maxPending;
    this.maxRequests = cfg.circuitBreaker.maxRequests ?? Number.POSITIVE_INFINITY;
    this.slowStart = cfg.slowStart;
    const b = cfg.retry.budget;
    this.budget = new RetryBudget(b.percent, b.minRetries, b.window);
  }

  /**
   * Takes over the state of the same targets (by address) in the Plan this one replaces: health,
   * ejection, slow start. A target the old Plan did not have starts its slow-start ramp.
   */
  adopt(old: Upstream | undefined): void {
    if (old === undefined) return;
    this.retries = old.retries;
    this.retriesDenied = old.retriesDenied;
    this.ejectionsTotal = old.ejectionsTotal;
    this.overflows = old.overflows;
    const before = new Map(old.targets.map((t) => [t.id, t]));
    for (const t of this.targets) {
      const o = before.get(t.id);
      if (o === undefined) {
        t.startRamp(this.slowStart);
        continue;
      }
      t.healthy = o.healthy;
      t.ejectedUntil = o.ejectedUntil;
      if (t.ejected) setTimeout(() => t.available, t.ejectedUntil - performance.now() + 1).unref();
      t.ejections = o.ejections;
      t.ejectedTotal = o.ejectedTotal;
      t.failures = o.failures;
      t.lastEjectionEnd = o.lastEjectionEnd;
      t.probeStreak = o.probeStreak;
      if (o.rampMs > 0 && this.slowStart > 0) {
        t.rampStart = o.rampStart;
        t.rampMs = this.slowStart;
      }
    }
  }

  /** Starts the active health checks, if configured; they stop with stop() or close(). */
  start(listener: TargetListener): void {
    this.#listener = listener;
    if (this.healthCheck && !this.#stopChecks)
      this.#stopChecks = startActiveChecks(this.targets, this.healthCheck, {
        healthy: (t, detail) => {
          if (!t.healthy) {
            t.healthy = true;
            t.startRamp(this.slowStart);
            this.#tell(t, `is healthy (${detail})`);
          } else if (t.ejected) {
            t.ejectedUntil = 0;
            t.lastEjectionEnd = performance.now();
            t.startRamp(this.slowStart);
            this.#tell(t, `is back: the active check passed (${detail})`);
          }
        },
        unhealthy: (t, detail) => {
          if (!t.healthy) return;
          t.healthy = false;
          this.#tell(t, `is DOWN (${detail})`);
        },
      });
  }

  /** Stops background work (health checks); the Plan is being replaced. */
  stop(): void {
    this.#stopChecks?.();
    this.#listener = null;
  }

  pick(ctx: RequestContext, exclude?: ReadonlySet<Target>): Target | undefined {
    const input: PickInput = {
      clientIp: ctx.clientIp,
      hashValue: this.hashValue === undefined ? undefined : this.hashValue(ctx),
      path: ctx.path,
    };
    const t = this.balancer.pick(input, exclude);
    if (t !== undefined || this.backupBalancer === null) return t;
    return this.backupBalancer.pick(input, exclude);
  }

  /** The circuit breaker: true when a new request to `target` must be refused (503 upstream_overflow). */
  overflowing(target: Target): boolean {
    if (this.active >= this.maxRequests) return true;
    if (target.active < this.maxConnectionsPerTarget) return false;
    // Every connection to this target is busy: the request would wait in the pool's queue.
    let queued = 0;
    for (const t of this.targets)
      if (t.active > this.maxConnectionsPerTarget) queued += t.active - this.maxConnectionsPerTarget;
    return queued >= this.maxPending;
  }

  /** May a request with this method and (replayable or not) body be retried after `kind`? */
  mayRetry(kind: RetryKind | 'status', method: string, bodyReplayable: boolean): boolean {
    if (kind !== 'status' && !this.retryOn.has(kind)) return false;
    if (!bodyReplayable) return false;
    // A connect failure reached no target, so retrying it adds no load anywhere: no method check, no budget.
    if (kind === 'connect-failure') return true;
    if (!this.retry.nonIdempotent && !IDEMPOTENT.has(method)) return false;
    if (this.budget.tryRetry()) return true;
    this.retriesDenied++;
    return false;
  }

  /** Outlier detection: a try on `target` failed (connect failure, reset, timeout or a failure status). */
  recordFailure(target: Target, why: string): void {
    if (this.failureStatus === null) return;
    target.failures++;
    const cfg = this.outlier;
    if (target.failures < cfg.consecutiveFailures || target.ejected) return;
    const n = this.targets.length;
    if (n < 2 || cfg.maxEjectionPercent === 0) return;
    const cap = Math.max(1, Math.floor((n * cfg.maxEjectionPercent) / 100));
    let ejected = 0;
    for (const t of this.targets) if (t.ejected) ejected++;
    if (ejected >= cap) return;
    const failures = target.failures;
    target.failures = 0;
    target.ejections++;
    target.ejectedTotal++;
    target.probeStreak = 0;
    const ms = Math.min(cfg.baseEjectionTime * target.ejections, cfg.maxEjectionTime);
    target.ejectedUntil = performance.now() + ms;
    // The end is noticed by the next pick, or by this timer when no traffic comes (so it is logged on time).
    setTimeout(() => target.available, ms + 1).unref();
    target.rampMs = 0;
    this.ejectionsTotal++;
    this.#tell(
      target,
      `is ejected for ${formatDuration(ms)} (${failures} consecutive failures, last: ${why})`,
    );
  }

  /** Outlier detection: a try on `target` got a response that is not a failure. */
  recordSuccess(target: Target): void {
    target.failures = 0;
    // Ejections are forgiven once the target has behaved for maxEjectionTime since the last one ended.
    if (target.ejections > 0 && performance.now() - target.lastEjectionEnd > this.outlier.maxEjectionTime)
      target.ejections = 0;
  }

  /** Stops (or resumes) sending new requests to a target; requests on it finish. */
  drain(id: string, on: boolean): boolean {
    const t = this.targets.find((x) => x.id === id);
    if (t === undefined) return false;
    if (t.draining !== on) {
      t.draining = on;
      if (!on) t.startRamp(this.slowStart);
      this.#tell(t, on ? 'is draining' : 'is no longer draining');
    }
    return true;
  }

  readonly #ejectionEnded = (t: Target): void => {
    t.lastEjectionEnd = performance.now();
    t.startRamp(this.slowStart);
    this.#tell(t, 'is back: its ejection ran out');
  };

  #tell(t: Target, change: string): void {
    this.#listener?.(this, t, change);
  }

  async close(): Promise<void> {
    this.stop();
    await Promise.all(this.targets.map((t) => t.close()));
  }
}

/** `header:x-user`, `cookie:session`, `query:id`, `clientIp`, `path`; a missing value hashes the path. */
export function hashKeyFunction(key: string): (ctx: RequestContext) => string | undefined {
  if (key === 'path') return () => undefined;
  if (key === 'clientIp') return (ctx) => ctx.clientIp;
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const name = key.slice(colon + 1);
  if (kind === 'header') {
    const h = name.toLowerCase();
    return (ctx) => {
      const v = ctx.req.headers[h];
      return Array.isArray(v) ? v.join(',') : v;
    };
  }
  if (kind === 'cookie') {
    const prefix = `${name}=`;
    return (ctx) => {
      const cookie = ctx.req.headers.cookie;
      if (cookie === undefined) return undefined;
      for (const part of cookie.split(';')) {
        const p = part.trim();
        if (p.startsWith(prefix)) return p.slice(prefix.length);
      }
      return undefined;
    };
  }
  return (ctx) => new URLSearchParams(ctx.query).get(name) ?? undefined;
}
