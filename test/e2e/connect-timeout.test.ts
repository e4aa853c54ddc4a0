// A real connect timeout on loopback: a listener whose accept queue is full and that never
// accepts makes the kernel drop further SYNs, so a connect hangs until Gatehouse gives up.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { start } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';
import { needCommand } from '../helpers/require.ts';

// Node accepts connections by itself; a listener that never accepts needs another runtime.
const BLACKHOLE = `import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
print(s.getsockname()[1], flush=True)
time.sleep(60)`;

test('a target that does not complete the connection: 504 upstream_connect_timeout, or the next target', async (t) => {
  if (!needCommand(t, 'python3', 'it provides a listener that never accepts')) return;
  const hole = spawn('python3', ['-c', BLACKHOLE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: Socket[] = [];
  const good = await origin();
  try {
    const [line] = await once(hole.stdout, 'data');
    const port = Number(String(line).trim());
    // Fill the accept queue so that later connects get no answer at all.
    for (let i = 0; i < 3; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => {}));
    await new Promise((r) => setTimeout(r, 200));
    const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes:
  - { name: hole, match: { pathPrefix: /hole }, upstream: hole }
  - { name: failover, match: { pathPrefix: /failover }, upstream: failover }
upstreams:
  hole: { targets: [{ url: "http://127.0.0.1:${port}" }], timeouts: { connect: 300ms } }
  failover:
    loadBalancer: roundRobin
    targets: [{ url: "http://127.0.0.1:${port}" }, { url: "${good.url}" }]
    timeouts: { connect: 300ms }
`);
    try {
      const r = await send(`${gh.url()}/hole`, { headers: { accept: 'application/json' } });
      assert.equal(r.status, 504);
      assert.equal(JSON.parse(r.body).reason, 'upstream_connect_timeout');
      assert.match(r.headers['proxy-status'] as string, /error=connection_timeout/);
      // With another target, a connect timeout is tried elsewhere: nothing reached the origin.
      for (let i = 0; i < 2; i++) assert.equal((await send(`${gh.url()}/failover/${i}`)).status, 200);
      assert.ok(gh.log.entries().some((e) => e.route === 'failover' && e.attempts === 2));
    } finally {
      await gh.close();
    }
  } finally {
    for (const s of fillers) s.destroy();
    hole.kill();
    await good.close();
  }
});
