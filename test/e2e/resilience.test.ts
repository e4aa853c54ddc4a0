// Retries, outlier detection, the retry budget, the circuit breaker, backup and draining targets,
// through a real Gatehouse and real origins on loopback.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { request } from 'undici';
import { validateText } from '../../src/config/validate.ts';
import { start, until } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { freePort } from '../helpers/net.ts';
import { type Origin, origin } from '../helpers/origin.ts';

const JSON_ACCEPT = { accept: 'application/json' };

/** Accepts connections and reads what arrives, but never answers. */
async function blackHole(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = createServer((s) => {
    count++;
    sockets.add(s);
    s.on('data', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => count,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Reads the whole request body, then drops the connection without answering. */
const readThenReset = (req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  req.on('end', () => res.socket?.destroy());
};

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function closeAll(...origins: Origin[]): Promise<void> {
  await Promise.all(origins.map((o) => o.close()));
}

test('a backend that accepts but never answers: per-try timeout, retry elsewhere, then ejection', async () => {
  const hole = await blackHole();
  const good = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [{ url: ${hole.url} }, { url: ${good.url} }]
    retry: { perTryTimeout: 150ms }
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 30s }
`);
  try {
    const replies = [];
    for (let i = 0; i < 6; i++) replies.push(await send(`${gh.url()}/r${i}`));
    assert.deepEqual(
      replies.map((r) => r.status),
      [200, 200, 200, 200, 200, 200],
    );
    const entries = gh.log.entries();
    // Round robin sends requests 1 and 3 to the silent target first: each waits one per-try timeout.
    assert.deepEqual(
      entries.map((e) => e.attempts),
      [2, 1, 2, 1, 1, 1],
    );
    for (const e of entries.filter((x) => x.attempts === 2)) {
      assert.ok((e.durationMs as number) >= 150, `waited the per-try timeout (${e.durationMs} ms)`);
      assert.ok((e.durationMs as number) < 600, `and not much more (${e.durationMs} ms)`);
      assert.equal(e.target, good.url);
    }
    assert.ok(
      gh.messages.some((m) =>
        m.includes(`target ${hole.url} is ejected for 30s (2 consecutive failures, last: upstream_timeout)`),
      ),
      gh.messages.join('\n'),
    );
    assert.equal(hole.connections(), 2, 'no request went to the ejected target');
  } finally {
    await gh.close();
    await hole.close();
    await good.close();
  }
});

test('a POST whose body was sent is not retried: 502 with the reason; a GET is; a refused POST is replayed', async () => {
  const r1 = await origin(readThenReset);
  const r2 = await origin(readThenReset);
  const good = await origin();
  const deadPort = await freePort();
  // Bodies stream upstream as they arrive here (requestBuffer off): once read, they cannot be replayed.
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
limits: { requestBuffer: "0" }
routes:
  - { name: resets, match: { pathPrefix: /resets }, upstream: resets }
  - { name: refused, match: { pathPrefix: /refused }, upstream: refused }
upstreams:
  resets:
    targets: [{ url: ${r1.url} }, { url: ${r2.url} }, { url: ${good.url} }]
    outlierDetection: { enabled: false }
  refused:
    targets: [{ url: "http://127.0.0.1:${deadPort}" }, { url: ${good.url} }]
`);
  try {
    const post = await send(`${gh.url()}/resets/post`, {
      method: 'POST',
      body: 'x'.repeat(1000),
      headers: JSON_ACCEPT,
    });
    assert.equal(post.status, 502);
    assert.equal(JSON.parse(post.body).reason, 'upstream_reset');
    assert.equal(r1.seen.length + r2.seen.length + good.seen.length, 1, 'the POST reached one target only');

    // PUT is idempotent, but its body has been consumed: not replayable, so not retried either.
    const put = await send(`${gh.url()}/resets/put`, {
      method: 'PUT',
      body: 'y'.repeat(1000),
      headers: JSON_ACCEPT,
    });
    assert.equal(put.status, 502);
    assert.equal(r1.seen.length + r2.seen.length + good.seen.length, 2);

    // A GET reset before any response byte is retried on another target.
    for (let i = 0; i < 3; i++) assert.equal((await send(`${gh.url()}/resets/get`)).status, 200);
    const gets = gh.log.entries().slice(-3);
    assert.ok(
      gets.some((e) => (e.attempts as number) >= 2),
      `some GET met a reset and was retried: ${gets.map((e) => e.attempts)}`,
    );

    // A refused connection reached nobody, so even a POST is tried again, with its body intact.
    const body = 'z'.repeat(5000);
    const refused = await send(`${gh.url()}/refused/post`, { method: 'POST', body });
    assert.equal(refused.status, 200);
    assert.equal(JSON.parse(refused.body).bytes, body.length);
    assert.equal(gh.log.entries().at(-1)?.attempts, 2);
    const chunked = await request(`${gh.url()}/refused/chunked`, {
      method: 'POST',
      body: Readable.from([Buffer.from(body.slice(0, 2000)), Buffer.from(body.slice(2000))]),
    });
    assert.equal(chunked.statusCode, 200);
    assert.equal(JSON.parse(await chunked.body.text()).bytes, body.length);
    assert.equal(good.seen.at(-1)?.headers['transfer-encoding'], 'chunked');
  } finally {
    await gh.close();
    await closeAll(r1, r2, good);
  }
});

test('the retry budget holds when every backend answers 503', async () => {
  const slow503 = (_req: IncomingMessage, res: ServerResponse) => {
    setTimeout(() => res.writeHead(503, { 'content-length': '4' }).end('busy'), 100);
  };
  const origins = [await origin(slow503), await origin(slow503), await origin(slow503)];
  const run = async (budget: string) => {
    for (const o of origins) o.seen.length = 0;
    const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [${origins.map((o) => `{ url: ${o.url} }`).join(', ')}]
    retry: { attempts: 3, statuses: [503], budget: ${budget} }
    outlierDetection: { enabled: false }
`);
    try {
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => send(`${gh.url()}/b${i}`)));
      // The last answer is passed on as it came: 503 from the backend, not a Gatehouse error.
      assert.ok(replies.every((r) => r.status === 503 && r.body === 'busy'));
      const upstream = gh.gh.plan.upstreams.get('u');
      return { tries: origins.reduce((n, o) => n + o.seen.length, 0), denied: upstream?.retriesDenied ?? 0 };
    } finally {
      await gh.close();
    }
  };
  try {
    const unbounded = await run('{ percent: 100, minRetries: 1000 }');
    assert.equal(unbounded.tries, 120, 'without a budget every request is tried three times');
    const budgeted = await run('{ percent: 20, minRetries: 2 }');
    assert.ok(budgeted.denied > 0, 'retries were denied');
    // 40 requests in the window: retries at most max(2, 20% of 40) = 8, where 80 were possible.
    assert.equal(budgeted.tries, 40 + 8, `tries with the budget: ${budgeted.tries}`);
    console.log(
      `# 40 requests against three 503s: ${unbounded.tries} tries without a budget, ${budgeted.tries} with it`,
    );
  } finally {
    await closeAll(...origins);
  }
});

test('retried statuses go to another target; the last answer passes through', async () => {
  const busy = await origin((_req, res) => res.writeHead(503, { 'retry-after': '3' }).end('busy'));
  const good = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [{ url: ${busy.url} }, { url: ${good.url} }]
    retry: { statuses: ["502-504"] }
    outlierDetection: { enabled: false }
`);
  try {
    for (let i = 0; i < 4; i++) assert.equal((await send(`${gh.url()}/s${i}`)).status, 200);
    assert.equal(busy.seen.length, 2, 'the busy target was tried, and its answers dropped');
    // POST is not idempotent: its 503 is the answer.
    const post = await send(`${gh.url()}/p`, { method: 'POST', body: 'x' });
    const post2 = await send(`${gh.url()}/p`, { method: 'POST', body: 'x' });
    assert.deepEqual([post.status, post2.status].sort(), [200, 503]);
  } finally {
    await gh.close();
    await closeAll(busy, good);
  }
});

test('outlier detection: 5xx ejects with a cool-down that grows, and never more than the allowed share', async () => {
  let otherFails = true;
  const flaky = await origin((_req, res) => res.writeHead(502).end('f'));
  const other = await origin((_req, res) => res.writeHead(otherFails ? 502 : 200).end('o'));
  const good = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [{ url: ${flaky.url} }, { url: ${other.url} }, { url: ${good.url} }]
    retry: { attempts: 1 }
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 300ms, maxEjectionPercent: 34 }
`);
  const ejections = () => gh.messages.filter((m) => m.includes('is ejected'));
  try {
    // Round robin: flaky, other, good, flaky (its 2nd failure: ejected), other (its 2nd: but 34% of
    // three targets allows one ejection at a time), ...
    for (let i = 0; i < 9; i++) await send(`${gh.url()}/o${i}`);
    assert.equal(ejections().length, 1, gh.messages.join('\n'));
    assert.match(
      ejections()[0],
      new RegExp(`${flaky.url} is ejected for 300ms \\(2 consecutive failures, last: status 502\\)`),
    );
    assert.equal(gh.gh.plan.upstreams.get('u')?.targets[0].state, 'ejected');
    otherFails = false;
    await until(
      () => gh.messages.some((m) => m.includes(`${flaky.url} is back: its ejection ran out`)),
      3000,
      'ejection over',
    );
    // Still failing after its cool-down: ejected again, for twice as long.
    for (let i = 0; i < 9; i++) await send(`${gh.url()}/o${i}`);
    assert.equal(ejections().length, 2, gh.messages.join('\n'));
    assert.match(ejections()[1], new RegExp(`${flaky.url} is ejected for 600ms`));
  } finally {
    await gh.close();
    await closeAll(flaky, other, good);
  }
});

test('circuit breaker: beyond max connections and max pending, a fast 503 instead of a queue', async () => {
  const slow = await origin((_req, res) => {
    setTimeout(() => res.end('slow'), 300);
  });
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [{ url: ${slow.url} }]
    maxConnectionsPerTarget: 1
    circuitBreaker: { maxPending: 1 }
`);
  try {
    const t0 = performance.now();
    const replies = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        await delay(i * 20);
        const r = await send(`${gh.url()}/c${i}`, { headers: JSON_ACCEPT });
        return { ...r, ms: performance.now() - t0 - i * 20 };
      }),
    );
    assert.deepEqual(
      replies.map((r) => r.status),
      [200, 200, 503, 503],
    );
    for (const r of replies.slice(2)) {
      assert.equal(JSON.parse(r.body).reason, 'upstream_overflow');
      assert.equal(r.headers['retry-after'], '1');
      assert.ok(r.ms < 250, `refused at once (${r.ms.toFixed(0)} ms), not after the queue`);
    }
    assert.equal(slow.seen.length, 2);
  } finally {
    await gh.close();
    await slow.close();
  }
});

test('backup targets serve only while every primary is down', async () => {
  let up = true;
  const primary = await origin((req, res) => {
    if (req.url === '/health') res.writeHead(up ? 200 : 503).end();
    else res.end('primary');
  });
  const backup = await origin((_req, res) => res.end('backup'));
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [{ url: ${primary.url} }, { url: ${backup.url}, backup: true }]
    healthCheck: { path: /health, interval: 50ms, healthyAfter: 1, unhealthyAfter: 1 }
`);
  try {
    for (let i = 0; i < 4; i++) assert.equal((await send(gh.url())).body, 'primary');
    up = false;
    await until(() => gh.messages.some((m) => m.includes(`${primary.url} is DOWN`)), 3000, 'primary down');
    for (let i = 0; i < 4; i++) assert.equal((await send(gh.url())).body, 'backup');
    up = true;
    await until(() => gh.messages.some((m) => m.includes(`${primary.url} is healthy`)), 3000, 'primary back');
    for (let i = 0; i < 4; i++) assert.equal((await send(gh.url())).body, 'primary');
  } finally {
    await gh.close();
    await closeAll(primary, backup);
  }
});

test('draining a target: no new requests, the one in flight finishes; health state survives the reload', async () => {
  let release: () => void = () => {};
  const a = await origin((req, res) => {
    if (req.url === '/slow') release = () => res.end('a-slow');
    else res.end('a');
  });
  const b = await origin((_req, res) => res.end('b'));
  const deadPort = await freePort();
  const config = (drain: boolean) => `
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets:
      - { url: ${a.url}, drain: ${drain} }
      - { url: ${b.url} }
      - { url: "http://127.0.0.1:${deadPort}" }
    healthCheck: { path: /, interval: 50ms, timeout: 200ms, unhealthyAfter: 1 }
`;
  const gh = await start(config(false));
  try {
    await until(() => gh.messages.some((m) => m.includes(`:${deadPort} is DOWN`)), 3000, 'dead target down');
    const slow = send(`${gh.url()}/slow`);
    await until(() => a.seen.some((s) => s.url === '/slow'), 3000, 'slow request on a');
    const v = validateText(config(true), 'test.yaml');
    gh.gh.reload(v.config as NonNullable<typeof v.config>);
    const bodies = [];
    for (let i = 0; i < 6; i++) bodies.push((await send(gh.url())).body);
    assert.deepEqual(
      bodies,
      ['b', 'b', 'b', 'b', 'b', 'b'],
      'drained a takes nothing new; dead target stays out',
    );
    release();
    assert.equal((await slow).body, 'a-slow');
    assert.equal(
      gh.messages.filter((m) => m.includes(`:${deadPort} is DOWN`)).length,
      1,
      'the reload did not forget the target was down',
    );
    assert.equal(gh.gh.plan.upstreams.get('u')?.targets[0].state, 'draining');
  } finally {
    await gh.close();
    await closeAll(a, b);
  }
});

test('health checks: method, headers, expected body, separate port, and TCP', async () => {
  let body = 'status: ok';
  const app = await origin((_req, res) => res.end('app'));
  const health = await origin((req, res) => res.end(req.method === 'HEAD' ? undefined : body));
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes:
  - { name: h, match: { pathPrefix: /head }, upstream: h }
  - { name: b, match: { pathPrefix: /body }, upstream: b }
  - { name: t, match: { pathPrefix: /tcp }, upstream: t }
upstreams:
  h:
    targets: [{ url: ${app.url} }]
    healthCheck:
      method: HEAD
      path: /ready
      port: ${health.port}
      headers: { Host: status.internal, X-Probe: "1" }
      interval: 50ms
  b:
    targets: [{ url: ${health.url} }]
    healthCheck: { path: /status, expectBody: "ok$", interval: 50ms, healthyAfter: 1, unhealthyAfter: 1 }
  t:
    targets: [{ url: ${app.url} }]
    healthCheck: { type: tcp, interval: 50ms, unhealthyAfter: 1 }
`);
  try {
    await until(() => health.seen.filter((s) => s.method === 'HEAD').length >= 2, 3000, 'probes');
    const probe = health.seen.find((s) => s.method === 'HEAD');
    assert.equal(probe?.url, '/ready');
    assert.equal(probe?.headers.host, 'status.internal');
    assert.equal(probe?.headers['x-probe'], '1');
    assert.equal(app.seen.length, 0, 'probes went to the health port, and TCP checks send no request');
    assert.equal((await send(`${gh.url()}/body`)).body, 'status: ok');
    body = 'status: failing';
    await until(
      () => gh.messages.some((m) => /is DOWN \(status 200, body did not match\)/.test(m)),
      3000,
      'body check',
    );
    assert.equal((await send(`${gh.url()}/body`, { headers: JSON_ACCEPT })).status, 503);
    assert.equal((await send(`${gh.url()}/head`)).body, 'app');
    assert.equal((await send(`${gh.url()}/tcp`)).body, 'app');
    assert.ok(!gh.messages.some((m) => m.includes(`${app.url} is DOWN`)), gh.messages.join('\n'));
  } finally {
    await gh.close();
    await closeAll(app, health);
  }
});

test('requestBuffer: a small body read whole first is replayable, so an idempotent PUT met by a reset is retried with it', async () => {
  const r1 = await origin(readThenReset);
  const good = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: resets, match: { pathPrefix: /resets }, upstream: resets }]
upstreams:
  resets:
    targets: [{ url: ${r1.url} }, { url: ${good.url} }]
    loadBalancer: roundRobin
    outlierDetection: { enabled: false }
`);
  try {
    const body = 'y'.repeat(1000);
    for (let i = 0; i < 2; i++) {
      const put = await send(`${gh.url()}/resets/put`, { method: 'PUT', body, headers: JSON_ACCEPT });
      assert.equal(put.status, 200, put.body);
      assert.equal(JSON.parse(put.body).bytes, body.length, 'the retried PUT carried its whole body');
    }
    assert.ok(
      gh.log.entries().some((e) => (e.attempts as number) === 2),
      'one PUT met the reset and was retried',
    );
  } finally {
    await gh.close();
    await r1.close();
    await good.close();
  }
});
