// An upstream: its targets (each with a keep-alive pool) and the parts that keep one failing target
// invisible to clients (docs/resilience.md), each in a file of its own:
//   balancers/          which target takes a request; backup targets only when no primary is available
//   retry.ts            whether a failed try goes to another target, and the retry budget
//   health/active.ts    probes that mark targets down and up
//   health/passive.ts   outlier detection: ejection after consecutive failures of real traffic
//   circuitBreaker.ts   a fast 503 instead of a queue without end
// This class holds them together with slow start and draining. Built once per Plan; target state
// is carried over from the previous Plan on reload (`adopt`).
import type { BalancerName, HealthCheckConfig, UpstreamConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { type RequestKey, requestKey } from '../routing/requestKey.ts';
import { balancers } from './balancers/index.ts';
import type { Balancer, PickInput } from './balancers/types.ts';
import { CircuitBreaker } from './circuitBreaker.ts';
import { startActiveChecks } from './health/active.ts';
import { OutlierDetector } from './health/passive.ts';
import { type RetryKind, RetryPolicy } from './retry.ts';
import { Target, type TargetTls } from './target.ts';

/** Told once per change of a target's state: `is DOWN (status 500)`, `is ejected for 30s (...)`. */
export type TargetListener = (upstream: Upstream, target: Target, change: string) => void;

/** The upstream's config as the request path reads it, copied once. */
export interface UpstreamSettings {
  readonly loadBalancer: BalancerName;
  /** Send the client's Host header upstream (true) or the target's host:port. */
  readonly passHostHeader: boolean;
  readonly connectTimeout: number;
  /** From the request sent to the response headers received, over all tries together. */
  readonly responseTimeout: number;
  /** One try's wait for response headers: retry.perTryTimeout, at most responseTimeout. */
  readonly perTryTimeout: number;
  /**
   * undici's header timeout ticks once a second or so; an explicitly configured per-try timeout
   * gets a timer of our own so that 150ms means 150ms.
   */
  readonly preciseTryTimeout: boolean;
  /** Longest silence while the response body streams (0: none). */
  readonly idleTimeout: number;
  /** WebSocket tunnels: idle and maximum lifetime (0: none). */
  readonly tunnelIdleTimeout: number;
  readonly tunnelMaxLifetime: number;
  /** A target coming back ramps up to its full weight over this long (0: at once). */
  readonly slowStart: number;
  readonly healthCheck: HealthCheckConfig | undefined;
}

function settingsOf(cfg: UpstreamConfig): UpstreamSettings {
  const t = cfg.timeouts;
  return Object.freeze({
    loadBalancer: cfg.loadBalancer,
    passHostHeader: cfg.passHostHeader,
    connectTimeout: t.connect,
    responseTimeout: t.response,
    perTryTimeout: Math.min(cfg.retry.perTryTimeout ?? t.response, t.response),
    preciseTryTimeout: cfg.retry.perTryTimeout !== undefined,
    idleTimeout: t.idle,
    tunnelIdleTimeout: t.tunnelIdle,
    tunnelMaxLifetime: t.tunnelMaxLifetime,
    slowStart: cfg.slowStart,
    healthCheck: cfg.healthCheck,
  });
}

export class Upstream {
  readonly name: string;
  readonly settings: UpstreamSettings;
  readonly targets: readonly Target[];
  readonly retry: RetryPolicy;
  readonly outlier: OutlierDetector;
  readonly breaker: CircuitBreaker;
  /** Client requests in flight through this upstream (a request with retries counts once). */
  active = 0;
  /** Retries sent and requests refused by the circuit breaker, since start (counted by the request path). */
  retries = 0;
  overflows = 0;
  readonly #balancer: Balancer;
  /** Over the backup targets, asked only when no primary is available; null without backups. */
  readonly #backupBalancer: Balancer | null;
  /** What consistentHash hashes; undefined for the other balancers. */
  readonly #hashKey: RequestKey | undefined;
  #listener: TargetListener | null = null;
  #stopChecks: (() => void) | undefined;

  /** `tls`: the material tlsMaterial() read when the Plan was compiled. */
  constructor(name: string, cfg: UpstreamConfig, tls: TargetTls) {
    this.name = name;
    const s = settingsOf(cfg);
    this.settings = s;
    this.targets = cfg.targets.map(
      (t) =>
        new Target(t.url, {
          tls,
          weight: t.weight,
          backup: t.backup,
          drain: t.drain,
          maxConnections: cfg.maxConnectionsPerTarget,
          connectTimeout: s.connectTimeout,
          headersTimeout: s.perTryTimeout,
          bodyTimeout: s.idleTimeout,
          keepAliveTimeout: cfg.timeouts.keepAlive,
          http1Client: cfg.http1Client,
        }),
    );
    const kind = balancers[cfg.loadBalancer];
    this.#balancer = kind.create(this.targets.filter((t) => !t.backup));
    const backups = this.targets.filter((t) => t.backup);
    this.#backupBalancer = backups.length > 0 ? kind.create(backups) : null;
    this.#hashKey = cfg.loadBalancer === 'consistentHash' ? requestKey(cfg.hashKey ?? 'path') : undefined;
    this.retry = new RetryPolicy(cfg.retry);
    this.outlier = new OutlierDetector(this.targets, cfg.outlierDetection, {
      ejected: (t, change) => {
        t.rampMs = 0;
        this.#tell(t, change);
      },
      back: (t, change) => {
        t.startRamp(this.settings.slowStart);
        this.#tell(t, change);
      },
    });
    this.breaker = new CircuitBreaker(this.targets, cfg.circuitBreaker, cfg.maxConnectionsPerTarget);
  }

  /** Retries the budget refused, since start. */
  get retriesDenied(): number {
    return this.retry.denied;
  }

  /** Outlier-detection ejections, since start. */
  get ejectionsTotal(): number {
    return this.outlier.ejectionsTotal;
  }

  /** An available target not in `exclude` (primaries first, then backups), or undefined when there is none. */
  pick(ctx: RequestContext, exclude?: ReadonlySet<Target>): Target | undefined {
    const input: PickInput = { clientIp: ctx.clientIp, hashValue: this.#hashKey?.(ctx), path: ctx.path };
    const t = this.#balancer.pick(input, exclude);
    if (t !== undefined || this.#backupBalancer === null) return t;
    return this.#backupBalancer.pick(input, exclude);
  }

  /** The circuit breaker: true when a new request to `target` must be refused (503 upstream_overflow). */
  overflowing(target: Target): boolean {
    return this.breaker.overflowing(target, this.active);
  }

  /**
   * The target for another try after the one on `ctx.target` failed with `kind`, or undefined when
   * tries or time (`deadline`, performance.now()) are used up, the policy or the budget says no,
   * or no untried target with a closed circuit is available. Adds `ctx.target` to `tried`.
   */
  nextTarget(
    ctx: RequestContext,
    tried: Set<Target>,
    kind: RetryKind,
    method: string,
    bodyReplayable: boolean,
    deadline: number,
  ): Target | undefined {
    if (!this.retry.allows(ctx.attempts, kind, method, bodyReplayable, deadline)) return undefined;
    if (ctx.target !== undefined) tried.add(ctx.target);
    const next = this.pick(ctx, tried);
    if (next === undefined || this.overflowing(next)) return undefined;
    return next;
  }

  /**
   * Takes over the state of the same targets (by address) in the Plan this one replaces: health,
   * ejection, slow start. A target the old Plan did not have starts its slow-start ramp.
   */
  adopt(old: Upstream | undefined): void {
    if (old === undefined) return;
    this.retries = old.retries;
    this.overflows = old.overflows;
    this.retry.denied = old.retry.denied;
    this.outlier.ejectionsTotal = old.outlier.ejectionsTotal;
    const slowStart = this.settings.slowStart;
    const before = new Map(old.targets.map((t) => [t.id, t]));
    for (const t of this.targets) {
      const o = before.get(t.id);
      if (o === undefined) {
        t.startRamp(slowStart);
        continue;
      }
      t.healthy = o.healthy;
      t.probeStreak = o.probeStreak;
      this.outlier.adopt(t, o);
      if (o.rampMs > 0 && slowStart > 0) {
        t.rampStart = o.rampStart;
        t.rampMs = slowStart;
      }
    }
  }

  /** Starts the active health checks, if configured; they stop with stop() or close(). */
  start(listener: TargetListener): void {
    this.#listener = listener;
    const cfg = this.settings.healthCheck;
    if (cfg && !this.#stopChecks)
      this.#stopChecks = startActiveChecks(this.targets, cfg, {
        healthy: (t, detail) => {
          if (!t.healthy) {
            t.healthy = true;
            t.startRamp(this.settings.slowStart);
            this.#tell(t, `is healthy (${detail})`);
          } else if (t.ejected) {
            this.outlier.endEjection(t, `is back: the active check passed (${detail})`);
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

  /** Stops (or resumes) sending new requests to a target; requests on it finish. */
  drain(id: string, on: boolean): boolean {
    const t = this.targets.find((x) => x.id === id);
    if (t === undefined) return false;
    if (t.draining !== on) {
      t.draining = on;
      if (!on) t.startRamp(this.settings.slowStart);
      this.#tell(t, on ? 'is draining' : 'is no longer draining');
    }
    return true;
  }

  #tell(t: Target, change: string): void {
    this.#listener?.(this, t, change);
  }

  async close(): Promise<void> {
    this.stop();
    this.outlier.close();
    await Promise.all(this.targets.map((t) => t.close()));
  }
}
