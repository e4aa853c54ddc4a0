// Active health checks: one loop per target, an HTTP GET of `path` every `interval` (with up to 10%
// jitter so a fleet of proxies does not probe in step), `healthyAfter` / `unhealthyAfter`
// consecutive results to change state. A state change is reported once, not every probe.
import type { UpstreamConfig } from '../../config/schema.ts';
import type { Target } from '../target.ts';

type HealthCheckConfig = NonNullable<UpstreamConfig['healthCheck']>;

export type HealthListener = (target: Target, healthy: boolean, detail: string) => void;

export function statusMatcher(patterns: readonly string[]): (status: number) => boolean {
  const ranges = patterns.map((p) => {
    if (/^[1-5]xx$/.test(p)) return [Number(p[0]) * 100, Number(p[0]) * 100 + 99];
    const [a, b] = p.split('-').map(Number);
    return [a, b ?? a];
  });
  return (s) => ranges.some(([a, b]) => s >= a && s <= b);
}

export function startActiveChecks(
  targets: readonly Target[],
  cfg: HealthCheckConfig,
  onChange: HealthListener,
): () => void {
  const ok = statusMatcher(cfg.expectStatus);
  const timers = new Set<NodeJS.Timeout>();
  const controller = new AbortController();
  let stopped = false;

  for (const target of targets) {
    let streak = 0; // > 0: consecutive successes; < 0: consecutive failures
    const probe = async () => {
      let detail = '';
      let success = false;
      try {
        const res = await target.pool.request({
          path: cfg.path,
          method: 'GET',
          headers: { host: target.authority, 'user-agent': 'gatehouse-health-check' },
          signal: AbortSignal.any([controller.signal, AbortSignal.timeout(cfg.timeout)]),
          headersTimeout: cfg.timeout,
          bodyTimeout: cfg.timeout,
        });
        await res.body.dump();
        success = ok(res.statusCode);
        detail = `status ${res.statusCode}`;
      } catch (err) {
        detail = (err as { code?: string }).code ?? (err as Error).name;
      }
      if (stopped) return;
      streak = success ? Math.max(streak, 0) + 1 : Math.min(streak, 0) - 1;
      if (!target.healthy && streak >= cfg.healthyAfter) {
        target.healthy = true;
        onChange(target, true, detail);
      } else if (target.healthy && -streak >= cfg.unhealthyAfter) {
        target.healthy = false;
        onChange(target, false, detail);
      }
      schedule();
    };
    const schedule = () => {
      if (stopped) return;
      const t = setTimeout(
        () => {
          timers.delete(t);
          void probe();
        },
        cfg.interval * (1 + Math.random() * 0.1),
      );
      t.unref();
      timers.add(t);
    };
    void probe();
  }
  return () => {
    stopped = true;
    controller.abort();
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };
}
