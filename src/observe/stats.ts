// Live figures for /metrics, the admin API and the dashboard, kept as plain numbers on the hot path
// (one Map lookup and a few array increments per request) and turned into Prometheus metrics or
// JSON only when someone asks. Everything is keyed by name (route, listener, upstream + target), so
// the figures survive a reload; label values are names from the config and fixed classes, never a
// raw path, client address or request id, so cardinality is bounded by the config.
import type { RequestContext } from '../pipeline/context.ts';
import type { Target } from '../upstream/target.ts';

/** Prometheus histogram buckets for request and upstream latency, in seconds. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export const METHOD_CLASSES = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'other'] as const;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'none'] as const;
const METHOD_INDEX: Record<string, number> = {
  GET: 0,
  HEAD: 1,
  POST: 2,
  PUT: 3,
  DELETE: 4,
  PATCH: 5,
  OPTIONS: 6,
};
const N_STATUS = STATUS_CLASSES.length;

/** 'none': no response was sent (the client left first). */
function statusIndex(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 5;
}

export class Histogram {
  /** Per bucket (not cumulative); the last one is +Inf. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }
}

// ---------------------------------------------------------------- the last minute, per second
const SECONDS = 60;
/** Fine latency buckets for percentiles: 0.1 ms × 1.25^i, about ±12% accuracy, up to ~2 hours. */
const FINE = 64;
const FINE_BASE = 0.1;
const FINE_GROWTH = Math.log(1.25);

function fineIndex(ms: number): number {
  if (ms <= FINE_BASE) return 0;
  return Math.min(FINE - 1, 1 + Math.floor(Math.log(ms / FINE_BASE) / FINE_GROWTH));
}
function fineUpper(i: number): number {
  return FINE_BASE * 1.25 ** i;
}

export interface WindowFigures {
  /** Requests per second over the window. */
  rps: number;
  requests: number;
  errors: number;
  errorRate: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** One point per second, oldest first: requests, errors and p99 (ms) in that second. */
  series: { t: number; requests: number; errors: number; p99: number | null }[];
}

/** Requests, errors and a latency histogram for each of the last 60 seconds. */
export class Window {
  readonly #requests = new Float64Array(SECONDS);
  readonly #errors = new Float64Array(SECONDS);
  readonly #latency = new Float64Array(SECONDS * FINE);
  /** The second (unix time) of the newest slot. */
  #second = 0;

  record(second: number, ms: number, error: boolean): void {
    const slot = this.#advance(second);
    this.#requests[slot]++;
    if (error) this.#errors[slot]++;
    this.#latency[slot * FINE + fineIndex(ms)]++;
  }

  figures(now: number, span = SECONDS): WindowFigures {
    const second = Math.floor(now / 1000);
    this.#advance(second);
    // The current second is still filling: report the `span` seconds before it.
    const hist = new Float64Array(FINE);
    let requests = 0;
    let errors = 0;
    const series: WindowFigures['series'] = [];
    for (let k = span; k >= 1; k--) {
      const s = second - k;
      const slot = ((s % SECONDS) + SECONDS) % SECONDS;
      const fresh = s > this.#second - SECONDS && s <= this.#second;
      const r = fresh ? this.#requests[slot] : 0;
      const e = fresh ? this.#errors[slot] : 0;
      requests += r;
      errors += e;
      const one = new Float64Array(FINE);
      if (fresh) {
        for (let i = 0; i < FINE; i++) {
          const c = this.#latency[slot * FINE + i];
          one[i] = c;
          hist[i] += c;
        }
      }
      series.push({ t: s, requests: r, errors: e, p99: percentile(one, r, 0.99) });
    }
    return {
      rps: requests / span,
      requests,
      errors,
      errorRate: requests === 0 ? 0 : errors / requests,
      p50: percentile(hist, requests, 0.5),
      p95: percentile(hist, requests, 0.95),
      p99: percentile(hist, requests, 0.99),
      series,
    };
  }

  #advance(second: number): number {
    if (second > this.#second) {
      const gap = Math.min(second - this.#second, SECONDS);
      for (let k = 1; k <= gap; k++) {
        const slot = (this.#second + k) % SECONDS;
        this.#requests[slot] = 0;
        this.#errors[slot] = 0;
        this.#latency.fill(0, slot * FINE, slot * FINE + FINE);
      }
      this.#second = second;
    }
    return second % SECONDS;
  }
}

/** The upper bound of the bucket holding the q-th quantile, in ms (null without data). */
function percentile(hist: Float64Array, total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < FINE; i++) {
    seen += hist[i];
    if (seen >= rank) return Number(fineUpper(i).toFixed(2));
  }
  return Number(fineUpper(FINE - 1).toFixed(2));
}

// ---------------------------------------------------------------- per route, target, listener
export class RouteStats {
  readonly name: string;
  /** `upstream|target` → counts by method class × status class. */
  readonly byTarget = new Map<string, { upstream: string; target: string; counts: Float64Array }>();
  readonly duration = new Histogram();
  bytesIn = 0;
  bytesOut = 0;
  readonly window = new Window();

  constructor(name: string) {
    this.name = name;
  }

  total(): number {
    let n = 0;
    for (const t of this.byTarget.values()) for (const c of t.counts) n += c;
    return n;
  }
}

export class TargetStats {
  readonly upstream: string;
  readonly id: string;
  readonly duration = new Histogram();
  readonly window = new Window();
  /** The live target object of the current Plan (state, in-flight requests). */
  target: Target;

  constructor(upstream: string, target: Target) {
    this.upstream = upstream;
    this.id = target.id;
    this.target = target;
  }
}

export class ListenerStats {
  readonly name: string;
  connections = 0;
  inflight = 0;
  tlsHandshakes = 0;
  tlsErrors = 0;
  constructor(name: string) {
    this.name = name;
  }
}

export interface RecentError {
  time: string;
  requestId: string;
  traceId: string | null;
  route: string | null;
  method: string;
  path: string;
  status: number;
  reason: string;
  target: string | null;
}

const RECENT_ERRORS = 50;

/** Every figure of one running Gatehouse. */
export class Stats {
  readonly started = Date.now();
  readonly routes = new Map<string, RouteStats>();
  readonly targets = new Map<string, TargetStats>();
  readonly #byTarget = new WeakMap<Target, TargetStats>();
  readonly listeners = new Map<string, ListenerStats>();
  readonly recentErrors: RecentError[] = [];

  listener(name: string): ListenerStats {
    let l = this.listeners.get(name);
    if (l === undefined) {
      l = new ListenerStats(name);
      this.listeners.set(name, l);
    }
    return l;
  }

  route(name: string): RouteStats {
    let r = this.routes.get(name);
    if (r === undefined) {
      r = new RouteStats(name);
      this.routes.set(name, r);
    }
    return r;
  }

  /** The stats of a target (kept across reloads by upstream name and address). */
  target(upstream: string, t: Target): TargetStats {
    let s = this.#byTarget.get(t);
    if (s !== undefined) return s;
    const key = `${upstream}|${t.id}`;
    s = this.targets.get(key);
    if (s === undefined) {
      s = new TargetStats(upstream, t);
      this.targets.set(key, s);
    }
    s.target = t;
    this.#byTarget.set(t, s);
    return s;
  }

  /** The `log` stage's other half: one request's figures. */
  record(ctx: RequestContext, now: number, traceId: string | null): void {
    const route = ctx.route;
    const ms = now - ctx.start;
    const status = ctx.status;
    const err = ctx.error;
    const failed = status >= 500 || (status === 0 && err !== undefined && err.reason !== 'client_closed');
    const second = Math.floor((performance.timeOrigin + now) / 1000);
    if (route !== undefined) {
      const rs = route.stats ?? this.route(route.name);
      const target = ctx.target;
      const upstream = ctx.upstream?.name ?? route.backend;
      const key = target === undefined ? upstream : `${upstream}|${target.id}`;
      let row = rs.byTarget.get(key);
      if (row === undefined) {
        row = {
          upstream,
          target: target?.id ?? '',
          counts: new Float64Array(METHOD_CLASSES.length * N_STATUS),
        };
        rs.byTarget.set(key, row);
      }
      row.counts[(METHOD_INDEX[ctx.req.method ?? ''] ?? 7) * N_STATUS + statusIndex(status)]++;
      rs.duration.observe(ms / 1000);
      rs.bytesIn += ctx.bytesIn;
      rs.bytesOut += ctx.bytesOut;
      rs.window.record(second, ms, failed);
      if (target !== undefined && ctx.upstreamMs >= 0) {
        const ts = this.target(upstream, target);
        ts.duration.observe(ctx.upstreamMs / 1000);
        ts.window.record(second, ctx.upstreamMs, failed);
      }
    }
    if (failed || (err !== undefined && err.reason !== 'client_closed' && status >= 400)) {
      if (this.recentErrors.length >= RECENT_ERRORS) this.recentErrors.shift();
      this.recentErrors.push({
        time: new Date(performance.timeOrigin + now).toISOString(),
        requestId: ctx.id,
        traceId,
        route: route?.name ?? null,
        method: ctx.req.method ?? '',
        path: ctx.path,
        status,
        reason: err?.reason ?? `status ${status}`,
        target: ctx.target?.id ?? null,
      });
    }
  }
}
