// One request path for every transport: what an ordinary request gets, an upgrade gets too
// (client-certificate headers, TLS to https:// targets, redirect to HTTPS, SNI routes, one error
// writer); strict request targets and Host (RFC 9112 §3.2); paths that cannot leave their route.
// Each of these failed on main at b7a22ec.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as connectH2 } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { makeCA, makeCert, type Pem, tempDir } from '../helpers/certs.ts';
import { start, until } from '../helpers/gatehouse.ts';
import { raw, send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';
import { needCommand } from '../helpers/require.ts';

/** A WebSocket origin that records each handshake's headers and echoes messages. */
async function wsOrigin(server?: ReturnType<typeof createHttpsServer>) {
  const upgrades: Record<string, string | string[] | undefined>[] = [];
  const wss = server ? new WebSocketServer({ server }) : new WebSocketServer({ port: 0, host: '127.0.0.1' });
  if (server) server.listen(0, '127.0.0.1');
  await once(server ?? wss, 'listening');
  wss.on('connection', (ws, req) => {
    upgrades.push(req.headers);
    ws.on('message', (d) => ws.send(d));
  });
  const port = ((server ?? wss).address() as AddressInfo).port;
  return {
    port,
    upgrades,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => (server ? server.close(() => r()) : r()));
      }),
  };
}

function opened(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, opts);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (d) => resolve(String(d)));
    ws.send(text);
  });
}

const UPGRADE = (path: string, host: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

test('upgrades over mTLS: forged client-certificate headers are replaced, with or without a certificate', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with openssl')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const server = makeCert(dir, ca, 'ws.example.test', ['ws.example.test']);
  const clientCa = makeCA(dir, 'Client CA');
  const client = makeCert(dir, clientCa, 'alice', [], { client: true });
  const up = await wsOrigin();
  const gh = await start(`
listeners:
  - name: tls
    address: 127.0.0.1:0
    tls:
      certificates: [{ certFile: ${server.certFile}, keyFile: ${server.keyFile} }]
      clientAuth: { mode: request, caFile: ${clientCa.certFile} }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:${up.port}" }] } }
`);
  try {
    const forged = { 'x-client-cert-subject': 'CN=admin', 'x-client-cert-verified': 'SUCCESS' };
    const base = { ca: ca.cert, servername: 'ws.example.test', headers: forged };
    const url = `${gh.url().replace('https:', 'wss:')}/chat`;
    const anon = await opened(url, base);
    assert.equal(await echo(anon, 'hi'), 'hi');
    anon.close();
    const alice = await opened(url, { ...base, cert: client.cert, key: client.key });
    assert.equal(await echo(alice, 'hello'), 'hello');
    alice.close();
    assert.equal(up.upgrades.length, 2);
    assert.equal(up.upgrades[0]['x-client-cert-verified'], 'NONE');
    assert.equal(up.upgrades[0]['x-client-cert-subject'], undefined);
    assert.equal(up.upgrades[1]['x-client-cert-verified'], 'SUCCESS');
    assert.match(String(up.upgrades[1]['x-client-cert-subject']), /CN=alice/);
    assert.doesNotMatch(String(up.upgrades[1]['x-client-cert-subject']), /admin/);
  } finally {
    await gh.close();
    await up.close();
  }
});

test('upgrades to https:// targets speak TLS, verified with the upstream CA and server name', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with openssl')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const cert: Pem = makeCert(dir, ca, 'backend.internal', ['backend.internal']);
  const up = await wsOrigin(createHttpsServer({ cert: cert.cert, key: cert.key }));
  const gh = await start(`
listeners: [{ name: web, address: 127.0.0.1:0 }]
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [{ url: "https://127.0.0.1:${up.port}" }]
    tls: { caFile: ${ca.certFile}, servername: backend.internal }
`);
  try {
    const ws = await opened(`${gh.url().replace('http:', 'ws:')}/secure`);
    assert.equal(await echo(ws, 'over tls'), 'over tls');
    ws.close();
    assert.equal(up.upgrades.length, 1);
    assert.equal(up.upgrades[0]['x-forwarded-proto'], 'http');
  } finally {
    await gh.close();
    await up.close();
  }
});

test('an upgrade on a redirectToHttps listener is redirected, not tunnelled', async () => {
  const up = await wsOrigin();
  const gh = await start(`
listeners: [{ name: web, address: 127.0.0.1:0, redirectToHttps: { port: 8443 } }]
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:${up.port}" }] } }
`);
  try {
    const answer = await raw(gh.url(), UPGRADE('/chat?x=1', 'example.com'));
    assert.match(answer, /^HTTP\/1\.1 301 /);
    assert.match(answer, /\r\nlocation: https:\/\/example\.com:8443\/chat\?x=1\r\n/i);
    assert.equal(up.upgrades.length, 0);
  } finally {
    await gh.close();
    await up.close();
  }
});

test('SNI routes match upgrades as they match requests', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with openssl')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const cert = makeCert(dir, ca, 'a.example.test', ['a.example.test', 'b.example.test']);
  const a = await wsOrigin();
  const b = await wsOrigin();
  const gh = await start(`
listeners:
  - name: tls
    address: 127.0.0.1:0
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }] }
routes:
  - { name: by-sni, match: { sni: [b.example.test] }, upstream: b }
  - { name: rest, upstream: a }
upstreams:
  a: { targets: [{ url: "http://127.0.0.1:${a.port}" }] }
  b: { targets: [{ url: "http://127.0.0.1:${b.port}" }] }
`);
  try {
    const url = `${gh.url().replace('https:', 'wss:')}/`;
    const ws = await opened(url, {
      ca: ca.cert,
      headers: { host: 'b.example.test' },
      servername: 'b.example.test',
    } as ConstructorParameters<typeof WebSocket>[2]);
    ws.close();
    assert.equal(b.upgrades.length, 1);
    assert.equal(a.upgrades.length, 0);
  } finally {
    await gh.close();
    await a.close();
    await b.close();
  }
});

test('an upgrade refused by Gatehouse gets the standard error page with a request id', async () => {
  const gh = await start(`
listeners: [{ name: web, address: 127.0.0.1:0 }]
routes: [{ name: api, match: { pathPrefix: /api/ }, upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`);
  try {
    const notFound = await raw(gh.url(), UPGRADE('/elsewhere', 'example.com'));
    assert.match(notFound, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.match(notFound, /\r\nx-request-id: [\w-]+\r\n/);
    assert.match(notFound, /\r\nconnection: close\r\n/);
    assert.match(notFound, /route_not_found/);
    const down = await raw(gh.url(), UPGRADE('/api/ws', 'example.com'));
    assert.match(down, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.match(down, /proxy-status: [^\r]*connection_refused/);
    assert.doesNotMatch(down, /127\.0\.0\.1/, 'no internal address reaches the client');
    await until(() => gh.log.lines.length === 2, 2000, 'two log lines');
    const lines = gh.log.lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => [l.status, l.reason]),
      [
        [404, 'route_not_found'],
        [502, 'upstream_connect_failed'],
      ],
    );
  } finally {
    await gh.close();
  }
});

test('paths cannot leave their route: encoded slashes refused, dot segments and // resolved, unreserved decoded', async () => {
  const app = await origin();
  const gh = await start(`
listeners: [{ name: web, address: 127.0.0.1:0 }]
routes:
  - { name: public, match: { pathPrefix: /public }, stripPrefix: true, upstream: u }
  - { name: raw, match: { pathPrefix: /raw/ }, allowEncodedSlashes: true, upstream: u }
  - { name: admin, match: { pathPrefix: /admin }, upstream: admin }
upstreams:
  u: { targets: [{ url: "${app.url}" }] }
  admin: { targets: [{ url: "http://127.0.0.1:1" }] }
`);
  try {
    for (const path of [
      '/public/..%2Fsecret.txt',
      '/public/%2e%2e%2fsecret.txt',
      '/public/..%5csecret.txt',
      '/public/a\\..\\secret.txt',
      '/public/%zz',
    ]) {
      const r = await raw(gh.url(), `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 400 /, path);
    }
    assert.equal(app.seen.length, 0, 'nothing reached the origin');
    const merged = await send(`${gh.url()}/public//files//a.txt`);
    assert.equal(JSON.parse(merged.body).url, '/files/a.txt');
    const dots = await send(`${gh.url()}/public/x/%2e%2e/y`);
    assert.equal(JSON.parse(dots.body).url, '/y');
    const kept = await send(`${gh.url()}/raw/a%2fb`);
    assert.equal(JSON.parse(kept.body).url, '/raw/a%2Fb', 'kept (upper case) where the route allows it');
    // `%61dmin` is `admin`: routed (and refused) as the admin route, not slipped past it.
    const admin = await send(`${gh.url()}/%61dmin/x`, { headers: { accept: 'application/json' } });
    assert.equal(admin.status, 502);
    assert.equal(app.seen.length, 3);
  } finally {
    await gh.close();
    await app.close();
  }
});

test('strict Host and request targets (RFC 9112 §3.2): one valid Host, absolute-form authority wins, OPTIONS *', async () => {
  const app = await origin();
  const gh = await start(`
listeners: [{ name: web, address: 127.0.0.1:0 }]
routes:
  - { name: a, match: { hosts: [a.example] }, upstream: u }
  - { name: b, match: { hosts: [b.example] }, upstream: u }
upstreams: { u: { targets: [{ url: "${app.url}" }], passHostHeader: true } }
`);
  const get = (target: string, headers: string) =>
    raw(gh.url(), `GET ${target} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`);
  try {
    for (const hosts of [
      'Host: a.example\r\nHost: b.example\r\n',
      'Host: user:pw@a.example\r\n',
      'Host: a.example/x\r\n',
      'Host: a\\example\r\n',
    ]) {
      const r = await get('/', hosts);
      assert.match(r, /^HTTP\/1\.1 400 /, JSON.stringify(hosts));
    }
    const none = await get('/', '');
    assert.match(none, /^HTTP\/1\.1 400 /, 'HTTP/1.1 without Host');
    assert.match(none, /\r\nx-request-id: /i, 'answered by the one error writer');
    const bad = await get('http://user@a.example/', 'Host: a.example\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 /, 'userinfo in an absolute-form target');
    assert.equal(app.seen.length, 0);
    const abs = await get('http://b.example/p?q=1', 'Host: a.example\r\n');
    assert.match(abs, /^HTTP\/1\.1 200 /);
    assert.equal(app.seen[0].headers.host, 'b.example', 'the target authority replaces Host');
    assert.equal(app.seen[0].url, '/p?q=1');
    const star = await raw(gh.url(), 'OPTIONS * HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
    assert.match(star, /^HTTP\/1\.1 200 /);
    assert.match(star, /\r\nallow: [A-Z, ]*OPTIONS/i);
    const starGet = await raw(gh.url(), 'GET * HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
    assert.match(starGet, /^HTTP\/1\.1 400 /);
  } finally {
    await gh.close();
    await app.close();
  }
});

test('HTTP/2 OPTIONS with :path * is answered, never 500', async () => {
  const app = await origin();
  const gh = await start(`
listeners: [{ name: web, address: 127.0.0.1:0, h2c: true }]
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: "${app.url}" }] } }
`);
  const session = connectH2(gh.url());
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const s = session.request({ ':method': 'OPTIONS', ':path': '*', ':authority': 'a.example' });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.end();
    });
    assert.equal(status, 200);
  } finally {
    session.close();
    await gh.close();
    await app.close();
  }
});
