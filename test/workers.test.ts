// `run --workers N`: N processes on the same port (SO_REUSEPORT), supervised.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { until } from './helpers/gatehouse.ts';
import { freePort } from './helpers/net.ts';
import { origin } from './helpers/origin.ts';
import { configFile, runGatehouse, spawnGatehouse } from './helpers/process.ts';

const children = (pid: number) =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);

test('two workers share a port, a crashed worker is restarted, SIGTERM stops them all', async () => {
  const up = await origin();
  const port = await freePort();
  const p = spawnGatehouse([
    'run',
    '-c',
    await configFile(`
listeners: [{ name: web, address: "127.0.0.1:${port}" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u: { targets: [{ url: "${up.url}" }] }
`),
    '--workers',
    '2',
  ]);
  // A new connection per request, so the kernel spreads them over both workers.
  const fresh = () => new Agent({ pipelining: 0 });
  const get = async (path: string) => {
    const agent = fresh();
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
    const pid = p.child.pid as number;
    const workerPids = children(pid);
    assert.equal(workerPids.length, 2);
    for (let i = 0; i < 10; i++) assert.equal(await get(`/a/${i}`), 200);

    process.kill(workerPids[0], 'SIGKILL');
    await until(() => /worker \d exited \(SIGKILL\); restarting/.test(p.stderr), 5000, 'restart message');
    for (let i = 0; i < 10; i++) assert.equal(await get(`/b/${i}`), 200, 'the other worker keeps serving');
    await until(
      () => children(pid).length === 2 && !children(pid).includes(workerPids[0]),
      10_000,
      'replacement worker',
    );
    await until(
      () => (p.stderr.match(/listener web: /g) ?? []).length === 3,
      10_000,
      'replacement listening',
    );

    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0);
    // Every access-log line from any worker arrived whole. The SIGKILLed worker's last buffered
    // lines are lost (as with any buffered log); those of workers stopped by SIGTERM are all there.
    const entries = p.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    for (const e of entries) assert.equal(e.status, 200);
    const after = entries.filter((e) => String(e.path).startsWith('/b/')).map((e) => e.path);
    assert.deepEqual(after.sort(), Array.from({ length: 10 }, (_, i) => `/b/${i}`).sort());
  } finally {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await up.close();
  }
});

test('--workers refuses what cannot be shared, and bad values', async () => {
  const limited = await configFile(`
listeners: [{ name: web, address: "127.0.0.1:18999" }]
middlewares: { lim: { rateLimit: { rate: 10 } } }
routes: [{ name: all, middlewares: [lim], upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`);
  const r = await runGatehouse(['run', '-c', limited, '--workers', '2']);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /middleware lim: rateLimit counts per process, so with 2 workers one client could get up to 2x its limit/,
  );
  const withAdmin = await configFile(`
listeners: [{ name: web, address: "127.0.0.1:18998" }]
admin: { address: "127.0.0.1:18997", token: "0123456789abcdef01" }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`);
  const a = await runGatehouse(['run', '-c', withAdmin, '--workers', '2']);
  assert.equal(a.code, 1);
  assert.match(a.stderr, /admin: each worker would keep its own figures/);
  const port0 = await configFile(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`);
  const z = await runGatehouse(['run', '-c', port0, '--workers', '2']);
  assert.equal(z.code, 1);
  assert.match(z.stderr, /listener web: port 0 picks a different port in every worker/);
  const bad = await runGatehouse(['run', '-c', port0, '--workers', 'many']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--workers takes auto or a whole number/);
});
