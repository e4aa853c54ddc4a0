// WebSockets through Gatehouse with the `ws` package on both sides: echo, large messages, close
// codes, ping/pong, forwarding headers, a refused handshake, timeouts, and 1,000 sockets at once.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { makeCA, makeCert, tempDir } from '../helpers/certs.ts';
import { start, until } from '../helpers/gatehouse.ts';
import { freePort } from '../helpers/net.ts';
import { needCommand } from '../helpers/require.ts';

interface Echo {
  url: string;
  port: number;
  upgrades: IncomingMessage[];
  /** Close codes the origin received from clients. */
  closes: number[];
  server: WebSocketServer;
  close(): Promise<void>;
}

async function echoServer(name: string): Promise<Echo> {
  const upgrades: IncomingMessage[] = [];
  const closes: number[] = [];
  const server = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    maxPayload: 64 * 1024 * 1024,
    verifyClient: (info, cb) => (info.req.url === '/forbidden' ? cb(false, 403, 'Forbidden') : cb(true)),
  });
  await once(server, 'listening');
  server.on('connection', (ws, req) => {
    upgrades.push(req);
    ws.on('close', (code) => closes.push(code));
    ws.on('message', (data, binary) => {
      const text = binary ? null : String(data);
      if (text === 'who') ws.send(name);
      else if (text?.startsWith('close:')) ws.close(Number(text.slice(6)), 'bye from origin');
      else ws.send(data, { binary });
    });
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    upgrades,
    closes,
    server,
    close: () =>
      new Promise((r) => {
        for (const c of server.clients) c.terminate();
        server.close(() => r());
      }),
  };
}

function opened(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, opts);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error('unexpected response'), { status: res.statusCode })),
    );
  });
}

const next = (ws: WebSocket) =>
  once(ws, 'message').then(([data, binary]) => ({ data: data as Buffer, binary }));

test('WebSockets: echo, large messages, close codes, ping/pong, headers, balancing, a refused handshake', async () => {
  const a = await echoServer('a');
  const b = await echoServer('b');
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: ws, match: { pathPrefix: /ws }, stripPrefix: true, upstream: u }]
upstreams: { u: { targets: [{ url: ${a.url} }, { url: ${b.url} }] } }
`);
  const base = gh.url().replace('http:', 'ws:');
  try {
    const ws = await opened(`${base}/ws/chat?room=1`, { headers: { 'x-forwarded-for': '6.6.6.6' } });
    ws.send('hello');
    assert.equal(String((await next(ws)).data), 'hello');
    // Forwarding headers on the upgrade request, the path rewritten by the route.
    const up = [...a.upgrades, ...b.upgrades][0];
    assert.equal(up.url, '/chat?room=1');
    assert.equal(up.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(up.headers['x-forwarded-proto'], 'http');
    assert.match(String(up.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.match(String(up.headers.via), /^1\.1 gatehouse-/);

    // 8 MiB each way, binary.
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    big[12345] = 1;
    ws.send(big);
    const echoed = await next(ws);
    assert.equal(echoed.binary, true);
    assert.ok(echoed.data.equals(big));

    // Ping from the client, pong from the origin through the tunnel.
    ws.ping(Buffer.from('p1'));
    const [pong] = await once(ws, 'pong');
    assert.equal(String(pong), 'p1');

    // The origin closes with a code and a reason: both reach the client.
    ws.send('close:4001');
    const [code, reason] = await once(ws, 'close');
    assert.equal(code, 4001);
    assert.equal(String(reason), 'bye from origin');

    // Round robin over the two targets.
    const who = [];
    for (let i = 0; i < 4; i++) {
      const s = await opened(`${base}/ws/who`);
      s.send('who');
      who.push(String((await next(s)).data));
      s.close(1000);
    }
    assert.deepEqual(who.sort(), ['a', 'a', 'b', 'b']);

    // The client closes with a code; the origin sees it.
    const c = await opened(`${base}/ws/x`);
    c.close(4321, 'client done');
    await once(c, 'close');
    await until(() => [...a.closes, ...b.closes].includes(4321), 2000, 'the origin saw the close code');

    // A refused handshake: the origin's answer reaches the client.
    await assert.rejects(opened(`${base}/ws/forbidden`), (err: { status?: number }) => err.status === 403);
    // No route, no target: Gatehouse's own answers.
    await assert.rejects(opened(`${base}/elsewhere`), (err: { status?: number }) => err.status === 404);

    await until(() => gh.log.entries().filter((e) => e.status === 101).length >= 6, 3000, 'tunnel log lines');
    const line = gh.log.entries().find((e) => e.status === 101 && (e.bytes as number) > big.length);
    assert.ok(line, 'the big tunnel is logged once with its bytes');
    assert.equal(line?.route, 'ws');
  } finally {
    await gh.close();
    await Promise.all([a.close(), b.close()]);
  }
});

test('WebSockets: a dead target is skipped, idle tunnels are closed, and a target refusing everywhere is a 502', async () => {
  const a = await echoServer('a');
  const deadPort = await freePort();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: ws, upstream: u }, { name: none, match: { pathPrefix: /none }, upstream: none }]
upstreams:
  u:
    targets: [{ url: "http://127.0.0.1:${deadPort}" }, { url: ${a.url} }]
    timeouts: { tunnelIdle: 300ms }
  none: { targets: [{ url: "http://127.0.0.1:${deadPort}" }] }
`);
  const base = gh.url().replace('http:', 'ws:');
  try {
    const ws = await opened(`${base}/`);
    ws.send('who');
    assert.equal(String((await next(ws)).data), 'a');
    const t0 = performance.now();
    await once(ws, 'close');
    const idle = performance.now() - t0;
    assert.ok(idle >= 250, `closed after ${idle.toFixed(0)} ms of silence`);
    await assert.rejects(opened(`${base}/none`), (err: { status?: number }) => err.status === 502);
  } finally {
    await gh.close();
    await a.close();
  }
});

test('WebSockets: 1,000 concurrent sockets through one Gatehouse', async () => {
  const a = await echoServer('a');
  const b = await echoServer('b');
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: ws, upstream: u }]
upstreams: { u: { loadBalancer: leastConnections, targets: [{ url: ${a.url} }, { url: ${b.url} }] } }
accessLog: { enabled: false }
`);
  const base = gh.url().replace('http:', 'ws:');
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < 1000; i += 100) {
      sockets.push(...(await Promise.all(Array.from({ length: 100 }, () => opened(`${base}/`)))));
    }
    assert.equal(a.server.clients.size + b.server.clients.size, 1000, 'all 1,000 open at once');
    assert.ok(Math.abs(a.server.clients.size - b.server.clients.size) <= 10, 'spread over both targets');
    const replies = await Promise.all(
      sockets.map(async (ws, i) => {
        ws.send(`m${i}`);
        return String((await next(ws)).data);
      }),
    );
    assert.deepEqual(
      replies,
      sockets.map((_, i) => `m${i}`),
    );
    await Promise.all(
      sockets.map((ws) => {
        ws.close(1000);
        return once(ws, 'close');
      }),
    );
    await until(() => a.server.clients.size + b.server.clients.size === 0, 5000, 'all closed upstream too');
  } finally {
    for (const s of sockets) s.terminate();
    await gh.close();
    await Promise.all([a.close(), b.close()]);
  }
});

test('WebSockets over TLS (wss) through a TLS listener that also offers HTTP/2', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with it')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const cert = makeCert(dir, ca, 'ws.example.test', ['ws.example.test']);
  const a = await echoServer('a');
  const gh = await start(`
listeners:
  - name: secure
    address: "127.0.0.1:0"
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }] }
routes: [{ name: ws, upstream: u }]
upstreams: { u: { targets: [{ url: ${a.url} }] } }
`);
  try {
    const tlsOptions = { ca: ca.cert, servername: 'ws.example.test' };
    const ws = await opened(`${gh.url().replace('https:', 'wss:')}/`, tlsOptions);
    ws.send('over tls');
    assert.equal(String((await next(ws)).data), 'over tls');
    assert.equal(a.upgrades[0].headers['x-forwarded-proto'], 'https');
    ws.close(1000);
    await once(ws, 'close');
  } finally {
    await gh.close();
    await a.close();
  }
});

test('WebSockets: a graceful stop waits its grace period, then ends open tunnels', async () => {
  const a = await echoServer('a');
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: ws, upstream: u }]
upstreams: { u: { targets: [{ url: ${a.url} }] } }
`);
  try {
    const ws = await opened(`${gh.url().replace('http:', 'ws:')}/`);
    const closed = once(ws, 'close');
    const t0 = performance.now();
    await gh.gh.close(200);
    await closed;
    const ms = performance.now() - t0;
    assert.ok(ms >= 150, `the tunnel got its grace period (${ms.toFixed(0)} ms)`);
    await until(() => gh.gh.inflight === 0, 2000, 'the tunnel to be counted out');
  } finally {
    await a.close();
  }
});
