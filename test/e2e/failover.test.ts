// One of three backends dies under a steady stream of requests: no client sees it. The dead one is
// out within the detection time, and when it comes back its share of traffic ramps up (slow start).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { start, until } from '../helpers/gatehouse.ts';
import { freePort } from '../helpers/net.ts';
import { origin } from '../helpers/origin.ts';

const TINY = join(import.meta.dirname, '..', '..', 'scripts', 'tiny-origin.ts');

async function tinyOrigin(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [TINY, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout as NonNullable<ChildProcess['stdout']>, 'data');
  return child;
}

interface Sample {
  sent: number;
  done: number;
  status: number;
  port: number;
  id: string;
}

test('a backend killed under load: zero failed requests, ejected in time, back with slow start', async () => {
  const a = await origin();
  const b = await origin();
  const deadPort = await freePort();
  let dead = await tinyOrigin(deadPort);
  const interval = 200;
  const unhealthyAfter = 2;
  const probeTimeout = 200;
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets:
      - url: ${a.url}
      - url: ${b.url}
      - url: http://127.0.0.1:${deadPort}
    healthCheck: { path: /, interval: ${interval}ms, timeout: ${probeTimeout}ms, healthyAfter: 2, unhealthyAfter: ${unhealthyAfter} }
    outlierDetection: { consecutiveFailures: 3, baseEjectionTime: 30s }
    slowStart: 2s
`);
  const samples: Sample[] = [];
  let running = true;
  const t0 = performance.now();
  const worker = async () => {
    while (running) {
      const sent = performance.now() - t0;
      const res = await request(`${gh.url()}/x`);
      const text = await res.body.text();
      samples.push({
        sent,
        done: performance.now() - t0,
        status: res.statusCode,
        port: res.statusCode === 200 ? JSON.parse(text).port : 0,
        id: String(res.headers['x-request-id']),
      });
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  try {
    await until(() => samples.filter((s) => s.port === deadPort).length > 20, 10_000, 'traffic on all three');
    const killedAt = performance.now() - t0;
    dead.kill('SIGKILL');
    await once(dead, 'exit');
    const outMsg = /target http:\/\/127\.0\.0\.1:\d+ (is ejected|is DOWN)/;
    await until(
      () => gh.messages.some((m) => outMsg.test(m) && m.includes(`:${deadPort}`)),
      5000,
      'dead one out',
    );
    const detectedAt = performance.now() - t0;
    // The configured detection time of the active check, with the probe timeout and jitter.
    const detectionBudget = interval * 1.1 * unhealthyAfter + probeTimeout;
    assert.ok(
      detectedAt - killedAt <= detectionBudget,
      `detected after ${(detectedAt - killedAt).toFixed(0)} ms (budget ${detectionBudget} ms)`,
    );
    await new Promise((r) => setTimeout(r, 500));
    const afterOut = samples.filter((s) => s.sent > detectedAt + 20);
    assert.ok(afterOut.length > 20, `traffic went on (${afterOut.length} requests)`);
    // No request sent after detection tried the dead target first (one attempt each).
    let byId = new Map(gh.log.entries().map((e) => [e.requestId as string, e]));
    assert.ok(
      afterOut.every((s) => byId.has(s.id)),
      'every request is in the access log',
    );
    const retried = afterOut.filter((s) => (byId.get(s.id)?.attempts as number) > 1);
    assert.equal(retried.length, 0, 'requests after detection went straight to live targets');

    // Back on the same port: the active check sees it, then slow start ramps its share.
    dead = await tinyOrigin(deadPort);
    await until(
      () => gh.messages.some((m) => m.includes(`:${deadPort}`) && /is healthy|is back/.test(m)),
      5000,
      'dead one back',
    );
    const backAt = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 3000));
    running = false;
    await Promise.all(workers);

    byId = new Map(gh.log.entries().map((e) => [e.requestId as string, e]));
    const share = (from: number, to: number) => {
      const w = samples.filter((s) => s.sent >= backAt + from && s.sent < backAt + to);
      return { share: w.filter((s) => s.port === deadPort).length / w.length, n: w.length };
    };
    const early = share(0, 500);
    const late = share(2200, 3000);
    assert.ok(early.n > 20 && late.n > 20, `enough samples (${early.n}, ${late.n})`);
    assert.ok(early.share < 0.2, `ramping: ${(early.share * 100).toFixed(1)}% in the first 500 ms`);
    assert.ok(late.share > 0.25, `full share after the ramp: ${(late.share * 100).toFixed(1)}%`);

    const failed = samples.filter((s) => s.status !== 200);
    const why = failed.map((s) => JSON.stringify(byId.get(s.id) ?? s)).join('\n');
    assert.equal(failed.length, 0, `failed client requests: ${failed.length} of ${samples.length}\n${why}`);
    console.log(
      `# ${samples.length} requests, 0 failed; out ${(detectedAt - killedAt).toFixed(0)} ms after the kill; ` +
        `share after return: ${(early.share * 100).toFixed(1)}% (first 500 ms), ${(late.share * 100).toFixed(1)}% (2.2-3 s)`,
    );
  } finally {
    running = false;
    await Promise.all(workers);
    await gh.close();
    dead.kill('SIGKILL');
    await Promise.all([a.close(), b.close()]);
  }
});
