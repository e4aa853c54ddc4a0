// Active health checks: one probe loop per target of an upstream, however many routes use it. A
// probe is an HTTP request (method, path, headers, expected statuses, optional body pattern) on a
// connection of its own, so it never queues behind traffic, or a bare TCP connect. Probes run every
// `interval` with up to 10% jitter (a fleet of proxies does not probe in step); `healthyAfter` /
// `unhealthyAfter` consecutive results are reported, and the upstream turns them into state changes,
// each logged once.

import { connect } from 'node:net';
import { Client } from 'undici';
import type { HealthCheckConfig } from '../../config/schema.ts';
import { compileUserRegex } from '../../config/units.ts';
import { statusMatcher } from '../statusMatcher.ts';
import type { Target } from '../target.ts';

export interface HealthVerdicts {
  /** healthyAfter consecutive successes (and every success after them). */
  healthy(target: Target, detail: string): void;
  /** unhealthyAfter consecutive failures (and every failure after them). */
  unhealthy(target: Target, detail: string): void;
}

const BODY_LIMIT = 64 * 1024;

type Probe = (signal: AbortSignal) => Promise<{ ok: boolean; detail: string }>;

export function startActiveChecks(
  targets: readonly Target[],
  cfg: HealthCheckConfig,
  verdicts: HealthVerdicts,
): () => void {
  const timers = new Set<NodeJS.Timeout>();
  const clients: Client[] = [];
  const controller = new AbortController();
  let stopped = false;

  for (const target of targets) {
    let probe: Probe;
    if (cfg.type === 'tcp') {
      probe = tcpProbe(target, cfg);
    } else {
      const origin = new URL(target.url.origin);
      if (cfg.port !== undefined) origin.port = String(cfg.port);
      const client = new Client(origin.origin, {
        pipelining: 1,
        connect: { ...target.connect, timeout: cfg.timeout },
        ...target.h2,
        keepAliveTimeout: Math.max(cfg.interval * 2, 4000),
        keepAliveMaxTimeout: Math.max(cfg.interval * 2, 4000),
      });
      clients.push(client);
      probe = httpProbe(target, client, cfg);
    }
    const run = async () => {
      let result: { ok: boolean; detail: string };
      const timeout = AbortSignal.timeout(cfg.timeout);
      try {
        result = await probe(AbortSignal.any([controller.signal, timeout]));
      } catch (err) {
        const e = err as { code?: string; name?: string };
        const timedOut =
          timeout.aborted || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT';
        result = { ok: false, detail: timedOut ? 'timeout' : (e.code ?? e.name ?? 'error') };
      }
      if (stopped) return;
      const s = target.probeStreak;
      if (result.ok) {
        target.probeStreak = Math.max(s, 0) + 1;
        if (target.probeStreak >= cfg.healthyAfter) verdicts.healthy(target, result.detail);
      } else {
        target.probeStreak = Math.min(s, 0) - 1;
        if (-target.probeStreak >= cfg.unhealthyAfter) verdicts.unhealthy(target, result.detail);
      }
      schedule();
    };
    const schedule = () => {
      if (stopped) return;
      const t = setTimeout(
        () => {
          timers.delete(t);
          void run();
        },
        cfg.interval * (1 + Math.random() * 0.1),
      );
      t.unref();
      timers.add(t);
    };
    void run();
  }
  return () => {
    if (stopped) return;
    stopped = true;
    controller.abort();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const c of clients) void c.destroy().catch(() => {});
  };
}

function httpProbe(target: Target, client: Client, cfg: HealthCheckConfig): Probe {
  const ok = statusMatcher(cfg.expectStatus);
  const body = cfg.expectBody === undefined ? undefined : compileUserRegex(cfg.expectBody);
  const headers: Record<string, string> = { host: target.authority, 'user-agent': 'gatehouse-health-check' };
  for (const [k, v] of Object.entries(cfg.headers)) headers[k.toLowerCase()] = v;
  return async (signal) => {
    const res = await client.request({
      path: cfg.path,
      method: cfg.method,
      headers,
      signal,
      headersTimeout: cfg.timeout,
      bodyTimeout: cfg.timeout,
    });
    if (!ok(res.statusCode)) {
      await res.body.dump();
      return { ok: false, detail: `status ${res.statusCode}` };
    }
    if (body === undefined) {
      await res.body.dump();
      return { ok: true, detail: `status ${res.statusCode}` };
    }
    let text = '';
    for await (const chunk of res.body) {
      text += (chunk as Buffer).toString('latin1');
      if (text.length >= BODY_LIMIT) break;
    }
    if (text.length >= BODY_LIMIT) res.body.destroy();
    return body.test(text.slice(0, BODY_LIMIT))
      ? { ok: true, detail: `status ${res.statusCode}, body matched` }
      : { ok: false, detail: `status ${res.statusCode}, body did not match` };
  };
}

function tcpProbe(target: Target, cfg: HealthCheckConfig): Probe {
  const host = target.url.hostname.replace(/^\[|\]$/g, '');
  const port = cfg.port ?? Number(target.url.port || 80);
  return (signal) =>
    new Promise((resolve, reject) => {
      const socket = connect({ host, port, signal });
      socket.once('connect', () => {
        socket.destroy();
        resolve({ ok: true, detail: 'connected' });
      });
      socket.once('error', (err) => {
        socket.destroy();
        reject(err);
      });
    });
}
