// `run --workers 2` with rateLimit store: redis: one bucket per key across the workers (a real
// redis-server, Debian `redis-server`); store: memory is still refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { until } from './helpers/gatehouse.ts';
import { freePort } from './helpers/net.ts';
import { origin } from './helpers/origin.ts';
import { configFile, runGatehouse, spawnGatehouse } from './helpers/process.ts';
import { redisServer } from './helpers/redis.ts';

test('--workers 2 and one Redis: 2N requests against a limit of N pass exactly N', async (t) => {
  const redis = await redisServer(t);
  if (!redis) return;
  const up = await origin();
  const port = await freePort();
  const N = 20;
  // timeout 2s and deny: a slow Redis on a busy machine shows as a 503, never as an extra pass.
  const p = spawnGatehouse([
    'run',
    '-c',
    await configFile(`
listeners: [{ name: web, address: "127.0.0.1:${port}" }]
redis: { url: "${redis.url}", timeout: 2s }
middlewares:
  lim: { rateLimit: { rate: ${N}, per: 1h, burst: ${N}, store: redis, onStoreError: deny } }
routes: [{ name: all, middlewares: [lim], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`),
    '--workers',
    '2',
  ]);
  // A new connection per request, so the kernel spreads them over both workers.
  const get = async (path: string) => {
    const agent = new Agent({ pipelining: 0 });
    try {
      const r = await request(`http://127.0.0.1:${port}${path}`, { dispatcher: agent });
      await r.body.dump();
      return r.statusCode;
    } finally {
      await agent.close();
    }
  };
  try {
    await until(
      () => (p.stderr.match(/listener web: /g) ?? []).length === 2,
      10_000,
      'two workers listening',
    );
    const statuses = await Promise.all(Array.from({ length: 2 * N }, (_, i) => get(`/r/${i}`)));
    assert.equal(statuses.filter((s) => s === 200).length, N);
    assert.equal(statuses.filter((s) => s === 429).length, N);
    assert.equal(up.seen.length, N);
    assert.deepEqual(await redis.command('KEYS', '*'), ['gatehouse:rl:lim:127.0.0.1']);
    // One client per worker, and both decided requests (their last command ran the script).
    const clients = String(await redis.command('CLIENT', 'LIST'))
      .trim()
      .split('\n');
    assert.equal(clients.filter((c) => /cmd=eval(sha)?\b/.test(c)).length, 2, clients.join('\n'));
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0);
    const lines = p.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.filter((e) => e.reason === 'rate_limited').length, N);
  } finally {
    // SIGTERM first, so the supervisor stops its workers (a SIGKILLed supervisor would orphan them).
    if (p.child.exitCode === null) {
      p.child.kill('SIGTERM');
      const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
      await p.exited;
      clearTimeout(t);
    }
    await up.close();
  }
});

test('--workers with rateLimit store: memory is refused, pointing to store: redis', async () => {
  const file = await configFile(`
listeners: [{ name: web, address: "127.0.0.1:18996" }]
middlewares:
  shared: { rateLimit: { rate: 10, store: redis } }
  lim: { rateLimit: { rate: 10 } }
redis: { url: "redis://127.0.0.1:1" }
routes: [{ name: all, middlewares: [shared, lim], upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`);
  const r = await runGatehouse(['run', '-c', file, '--workers', '2']);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /middleware lim: rateLimit counts per process, so with 2 workers .*use store: redis/,
  );
  assert.doesNotMatch(r.stderr, /middleware shared/);
});
