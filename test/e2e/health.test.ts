import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { test } from 'node:test';
import { start, until } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';

test('every target down → 503 no_healthy_target with Retry-After; recovery without a restart', async () => {
  let healthy = true;
  const server: Server = createServer((req, res) => {
    if (req.url === '/healthz') res.writeHead(healthy ? 200 : 500).end();
    else res.end('served');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [{ url: "http://127.0.0.1:${port}" }]
    healthCheck: { path: /healthz, interval: 100ms, timeout: 500ms, healthyAfter: 2, unhealthyAfter: 2 }
`);
  try {
    assert.equal((await send(gh.url())).body, 'served');
    healthy = false;
    await until(() => gh.messages.some((m) => /is DOWN \(status 500\)/.test(m)), 5000, 'target marked down');
    const r = await send(gh.url(), { headers: { accept: 'application/json' } });
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '5');
    assert.equal(JSON.parse(r.body).reason, 'no_healthy_target');
    healthy = true;
    await until(() => gh.messages.some((m) => /is healthy/.test(m)), 5000, 'target back');
    assert.equal((await send(gh.url())).body, 'served');
    // One message per state change, not one per probe.
    assert.equal(gh.messages.filter((m) => /DOWN/.test(m)).length, 1);
  } finally {
    await gh.close();
    server.closeAllConnections();
    server.close();
  }
});
