// /metrics: prom-client's registry and process metrics, plus Gatehouse's own figures read from Stats
// and the current Plan at scrape time (nothing on the hot path touches prom-client). Labels are
// names from the config and fixed classes only; see docs/admin-api.md for the list.
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { CacheRegistry, HttpCache } from '../cache/cache.ts';
import type { Plan } from '../config/compile.ts';
import type { Limits } from '../limits/index.ts';
import { rateLimitFallbacks } from '../middleware/rateLimit.ts';
import {
  type Histogram,
  LATENCY_BUCKETS,
  METHOD_CLASSES,
  STATUS_CLASSES,
  type Stats,
} from '../observe/stats.ts';
import type { Tracer } from '../observe/tracing.ts';
import { type RedisStats, redisStats } from '../state/redis.ts';
import type { MirrorRegistry } from '../traffic/mirror.ts';
import { wafEvents } from '../waf/events.ts';

type Labels = Record<string, string | number>;
interface Value {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** A metric whose values are computed when scraped (prom-client's registry accepts any object with get()). */
function view(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => Value[]) {
  return {
    name,
    help,
    type,
    aggregator: 'sum' as const,
    get: async () => ({ name, help, type, aggregator: 'sum', values: values() }),
    reset() {},
  };
}

const RESULT = {
  hits: 'hit',
  misses: 'miss',
  stale: 'stale',
  revalidated: 'revalidated',
  coalesced: 'coalesced',
  bypass: 'bypass',
} as const;

function histogramValues(name: string, labels: Labels, h: Histogram): Value[] {
  const out: Value[] = [];
  let acc = 0;
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
    acc += h.counts[i];
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: LATENCY_BUCKETS[i] }, value: acc });
  }
  acc += h.counts[LATENCY_BUCKETS.length];
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: acc });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
  return out;
}

export function metricsRegistry(
  stats: Stats,
  plan: () => Plan,
  tracer: Tracer | null,
  version: string,
  caches: CacheRegistry | null = null,
  mirrors: MirrorRegistry | null = null,
  limits: Limits | null = null,
): Registry {
  const reg = new Registry();
  collectDefaultMetrics({ register: reg });
  const add = (m: ReturnType<typeof view>) => reg.registerMetric(m as never);

  add(view('gatehouse_info', 'Gatehouse version.', 'gauge', () => [{ labels: { version }, value: 1 }]));
  add(
    view(
      'gatehouse_requests_total',
      'Requests by route, upstream, target, method and status class.',
      'counter',
      () => {
        const out: Value[] = [];
        for (const r of stats.routes.values())
          for (const row of r.byTarget.values())
            for (let m = 0; m < METHOD_CLASSES.length; m++)
              for (let s = 0; s < STATUS_CLASSES.length; s++) {
                const v = row.counts[m * STATUS_CLASSES.length + s];
                if (v > 0)
                  out.push({
                    labels: {
                      route: r.name,
                      upstream: row.upstream,
                      target: row.target,
                      method: METHOD_CLASSES[m],
                      status_class: STATUS_CLASSES[s],
                    },
                    value: v,
                  });
              }
        return out;
      },
    ),
  );
  add(
    view(
      'gatehouse_request_duration_seconds',
      'Time from request received to response done, by route.',
      'histogram',
      () =>
        [...stats.routes.values()].flatMap((r) =>
          histogramValues('gatehouse_request_duration_seconds', { route: r.name }, r.duration),
        ),
    ),
  );
  add(
    view(
      'gatehouse_upstream_duration_seconds',
      'Time from the first try sent to response headers, by target.',
      'histogram',
      () =>
        [...stats.targets.values()].flatMap((t) =>
          histogramValues(
            'gatehouse_upstream_duration_seconds',
            { upstream: t.upstream, target: t.id },
            t.duration,
          ),
        ),
    ),
  );
  add(
    view('gatehouse_request_bytes_total', 'Request body bytes received, by route.', 'counter', () =>
      [...stats.routes.values()].map((r) => ({ labels: { route: r.name }, value: r.bytesIn })),
    ),
  );
  add(
    view('gatehouse_response_bytes_total', 'Response body bytes sent, by route.', 'counter', () =>
      [...stats.routes.values()].map((r) => ({ labels: { route: r.name }, value: r.bytesOut })),
    ),
  );
  add(
    view('gatehouse_connections_active', 'Open client connections, by listener.', 'gauge', () =>
      [...stats.listeners.values()].map((l) => ({ labels: { listener: l.name }, value: l.connections })),
    ),
  );
  add(
    view(
      'gatehouse_tls_handshakes_total',
      'TLS handshakes, by listener and result (failed: the client gave up or was refused).',
      'counter',
      () =>
        [...stats.listeners.values()].flatMap((l) => [
          { labels: { listener: l.name, result: 'ok' }, value: l.tlsHandshakes },
          { labels: { listener: l.name, result: 'failed' }, value: l.tlsErrors },
        ]),
    ),
  );
  add(
    view('gatehouse_requests_in_flight', 'Requests being served, by listener.', 'gauge', () =>
      [...stats.listeners.values()].map((l) => ({ labels: { listener: l.name }, value: l.inflight })),
    ),
  );
  const targets = () =>
    [...plan().upstreams.values()].flatMap((u) =>
      u.targets.map((t) => ({ u, t, labels: { upstream: u.name, target: t.id } })),
    );
  add(
    view(
      'gatehouse_upstream_target_state',
      'Target state: 1 for the current one of healthy, unhealthy, ejected, draining.',
      'gauge',
      () =>
        targets().flatMap(({ t, labels }) =>
          (['healthy', 'unhealthy', 'ejected', 'draining'] as const).map((state) => ({
            labels: { ...labels, state },
            value: t.state === state ? 1 : 0,
          })),
        ),
    ),
  );
  add(
    view('gatehouse_upstream_target_in_flight', 'Requests in flight to a target.', 'gauge', () =>
      targets().map(({ t, labels }) => ({ labels, value: t.active })),
    ),
  );
  add(
    view('gatehouse_upstream_ejections_total', 'Outlier-detection ejections, by target.', 'counter', () =>
      targets().map(({ t, labels }) => ({ labels, value: t.outlier.ejectedTotal })),
    ),
  );
  const perUpstream = (
    name: string,
    help: string,
    pick: (u: ReturnType<Plan['upstreams']['get']> & {}) => number,
  ) =>
    add(
      view(name, help, 'counter', () =>
        [...plan().upstreams.values()].map((u) => ({ labels: { upstream: u.name }, value: pick(u) })),
      ),
    );
  perUpstream('gatehouse_upstream_retries_total', 'Retries sent, by upstream.', (u) => u.retries);
  perUpstream(
    'gatehouse_upstream_retries_denied_total',
    'Retries refused by the retry budget.',
    (u) => u.retriesDenied,
  );
  perUpstream(
    'gatehouse_upstream_overflows_total',
    'Requests refused by the circuit breaker (503 upstream_overflow).',
    (u) => u.overflows,
  );
  const splitValues = (pick: (s: { weight: number; requests: number }) => number) => () =>
    plan().routes.flatMap((r) =>
      (r.split?.describe() ?? []).map((s) => ({
        labels: { route: r.name, upstream: s.upstream },
        value: pick(s),
      })),
    );
  add(
    view(
      'gatehouse_split_requests_total',
      'Requests a split route sent to each side (since the route was last loaded).',
      'counter',
      splitValues((s) => s.requests),
    ),
  );
  add(
    view(
      'gatehouse_split_weight',
      "Each side's current weight in a split route.",
      'gauge',
      splitValues((s) => s.weight),
    ),
  );
  // Shared state (rateLimit store: redis): per Redis server, and the fallbacks taken without it.
  const redisView = (
    name: string,
    help: string,
    type: 'counter' | 'gauge',
    pick: (r: RedisStats) => number,
  ) =>
    add(
      view(name, help, type, () => redisStats().map((r) => ({ labels: { redis: r.url }, value: pick(r) }))),
    );
  redisView('gatehouse_redis_up', '1 while connected to this Redis.', 'gauge', (r) => (r.connected ? 1 : 0));
  redisView(
    'gatehouse_redis_circuit_open',
    '1 while the circuit on this Redis is open (decisions skip it).',
    'gauge',
    (r) => (r.circuit === 'closed' ? 0 : 1),
  );
  redisView(
    'gatehouse_redis_circuit_opens_total',
    'Times the circuit on this Redis opened.',
    'counter',
    (r) => r.circuitOpens,
  );
  redisView('gatehouse_redis_calls_total', 'Decisions sent to this Redis.', 'counter', (r) => r.calls);
  redisView(
    'gatehouse_redis_short_circuited_total',
    'Decisions not sent while the circuit was open.',
    'counter',
    (r) => r.shortCircuited,
  );
  add(
    view(
      'gatehouse_redis_errors_total',
      'Failed Redis calls, by kind: timeout, error (connection), reply (Redis refused).',
      'counter',
      () =>
        redisStats().flatMap((r) => [
          { labels: { redis: r.url, kind: 'timeout' }, value: r.timeouts },
          { labels: { redis: r.url, kind: 'error' }, value: r.errors },
          { labels: { redis: r.url, kind: 'reply' }, value: r.replyErrors },
        ]),
    ),
  );
  add(
    view(
      'gatehouse_ratelimit_store_fallbacks_total',
      'Rate-limit decisions made without the store (onStoreError: allow, deny or local), by middleware and action.',
      'counter',
      () =>
        rateLimitFallbacks().map((f) => ({
          labels: { middleware: f.middleware, action: f.action },
          value: f.count,
        })),
    ),
  );
  add(
    view(
      'gatehouse_waf_matches_total',
      'WAF matches by rule class and action: blocked (403), detected (detect mode, let through), scored (below the threshold).',
      'counter',
      () =>
        wafEvents
          .counts()
          .map((c) => ({ labels: { rule_class: c.rule_class, action: c.action }, value: c.value })),
    ),
  );
  // Abuse limits: refused connections, slow bodies, the per-client budget, bans (src/limits).
  if (limits !== null) for (const f of limits.metrics()) add(view(f.name, f.help, f.type, f.values));
  if (mirrors !== null) {
    add(
      view(
        'gatehouse_mirror_requests_total',
        'Mirrored requests by route and outcome: sent, dropped (queue full), skipped (body not copyable), failed, compared, matched, differed, incomplete.',
        'counter',
        () =>
          mirrors.snapshot(0).routes.flatMap((r) =>
            Object.entries(r.figures).map(([outcome, value]) => ({
              labels: { route: r.route, outcome },
              value,
            })),
          ),
      ),
    );
    add(
      view(
        'gatehouse_mirror_differences_total',
        'Differences between the mirror and the client’s answer, by kind.',
        'counter',
        () =>
          mirrors.snapshot(0).routes.flatMap((r) =>
            Object.entries(r.countsByKind).map(([kind, value]) => ({
              labels: { route: r.route, kind },
              value,
            })),
          ),
      ),
    );
    add(
      view('gatehouse_mirror_inflight', 'Copies under way.', 'gauge', () =>
        mirrors.snapshot(0).routes.map((r) => ({ labels: { route: r.route }, value: r.inflight })),
      ),
    );
  }
  if (caches !== null) {
    const perCache = (
      name: string,
      help: string,
      type: 'counter' | 'gauge',
      pick: (c: HttpCache) => number,
    ) =>
      add(
        view(name, help, type, () =>
          [...caches.caches.values()].map((c) => ({ labels: { cache: c.name }, value: pick(c) })),
        ),
      );
    add(
      view(
        'gatehouse_cache_requests_total',
        "Cache lookups by result: hit, miss, stale (served stale), revalidated (a 304 refreshed the entry), coalesced (answered by another request's fetch), bypass (methods the cache does not serve).",
        'counter',
        () =>
          [...caches.caches.values()].flatMap((c) =>
            (['hits', 'misses', 'stale', 'revalidated', 'coalesced', 'bypass'] as const).map((k) => ({
              labels: { cache: c.name, result: RESULT[k] },
              value: c.figures[k],
            })),
          ),
      ),
    );
    perCache('gatehouse_cache_stored_total', 'Responses stored.', 'counter', (c) => c.figures.stored);
    perCache(
      'gatehouse_cache_evictions_total',
      'Entries evicted to stay within maxSize.',
      'counter',
      (c) => c.store.evictions,
    );
    perCache(
      'gatehouse_cache_purged_total',
      'Entries removed by the purge API.',
      'counter',
      (c) => c.figures.purged,
    );
    perCache(
      'gatehouse_cache_invalidated_total',
      'Entries removed after unsafe methods (RFC 9111 §4.4).',
      'counter',
      (c) => c.figures.invalidated,
    );
    perCache(
      'gatehouse_cache_bytes',
      'Bytes held (bodies, heads and entries), against maxSize.',
      'gauge',
      (c) => c.store.bytes,
    );
    perCache('gatehouse_cache_max_bytes', 'The configured maxSize.', 'gauge', (c) => c.store.maxSize);
    perCache('gatehouse_cache_objects', 'Entries held.', 'gauge', (c) => c.store.objects);
  }
  if (tracer !== null) {
    add(
      view(
        'gatehouse_tracing_spans_total',
        'Spans exported or dropped (collector unreachable or refusing).',
        'counter',
        () => [
          { labels: { result: 'exported' }, value: tracer.exported },
          { labels: { result: 'dropped' }, value: tracer.dropped },
        ],
      ),
    );
  }
  return reg;
}
