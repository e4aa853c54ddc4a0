// Forwarding correctness through a real Gatehouse to a real origin.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Running, start } from '../helpers/gatehouse.ts';
import { json, raw, send } from '../helpers/http.ts';
import { type Origin, origin } from '../helpers/origin.ts';

let echo: Origin;
let redirector: Origin;
let gh: Running;
let trustingGh: Running;

before(async () => {
  echo = await origin();
  redirector = await origin((req, res) => {
    const self = `http://127.0.0.1:${redirector.port}`;
    res.writeHead(302, {
      location: req.url === '/elsewhere' ? 'https://other.example.net/x' : `${self}/login?next=1`,
      'content-location': `${self}/here`,
      connection: 'x-internal',
      'x-internal': 'secret',
      'keep-alive': 'timeout=5',
      via: '1.1 origin-cache',
    });
    res.end();
  });
  gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
forwarding: { via: gh-test }
routes:
  - { name: strip, match: { pathPrefix: /api/ }, stripPrefix: true, upstream: echo }
  - { name: rewrite, match: { pathPrefix: /old }, rewrite: { regex: "^/old/(.*)$", replacement: "/new/$1" }, upstream: echo }
  - { name: hosted, match: { pathPrefix: /target-host }, upstream: echoTargetHost }
  - { name: redirect, match: { pathPrefix: /r/ }, stripPrefix: true, upstream: redirector }
  - { name: rest, match: { pathPrefix: / }, upstream: echo }
upstreams:
  echo: { targets: [{ url: "${echo.url}" }] }
  echoTargetHost: { passHostHeader: false, targets: [{ url: "${echo.url}" }] }
  redirector: { targets: [{ url: "${redirector.url}" }] }
`);
  trustingGh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
forwarding: { trustedProxies: [127.0.0.1/32], forwarded: true }
routes: [{ name: all, upstream: echo }]
upstreams:
  echo: { targets: [{ url: "${echo.url}" }] }
`);
});
after(async () => {
  await gh.close();
  await trustingGh.close();
  await echo.close();
  await redirector.close();
});

type Echo = { url: string; headers: Record<string, string>; bytes: number };

test('forwarding headers from an untrusted client are replaced, not appended to', async () => {
  const { data } = await json(`${gh.url()}/x?a=1&b=2`, {
    headers: {
      host: 'shop.example.com:8080',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      'x-real-ip': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
    },
  });
  const e = data as unknown as Echo;
  assert.equal(e.url, '/x?a=1&b=2');
  assert.equal(e.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(e.headers['x-real-ip'], '127.0.0.1');
  assert.equal(e.headers['x-forwarded-proto'], 'http');
  assert.equal(e.headers['x-forwarded-host'], 'shop.example.com:8080');
  assert.equal(e.headers.forwarded, undefined);
  assert.equal(e.headers.host, 'shop.example.com:8080', "the client's Host is passed by default");
  assert.equal(e.headers.via, '1.1 gh-test');
});

test('behind a trusted proxy X-Forwarded-For is appended and the client address taken from it', async () => {
  const { data } = await json(`${trustingGh.url()}/`, {
    headers: {
      'x-forwarded-for': '203.0.113.7, 127.0.0.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'public.example',
      forwarded: 'for=203.0.113.7;proto=https',
    },
  });
  const e = data as unknown as Echo;
  assert.equal(e.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.9, 127.0.0.1');
  // 127.0.0.9 is inside the trusted 127.0.0.1/32? No: only .1 is trusted, so .9 is the client.
  assert.equal(e.headers['x-real-ip'], '127.0.0.9');
  assert.equal(e.headers['x-forwarded-proto'], 'https');
  assert.equal(e.headers['x-forwarded-host'], 'public.example');
  assert.match(
    e.headers.forwarded,
    /^for=203\.0\.113\.7;proto=https, for=127\.0\.0\.1;proto=http;host="127\.0\.0\.1:\d+"$/,
  );
});

test('hop-by-hop headers and those named in Connection are not forwarded', async () => {
  const reply = await raw(
    gh.url(),
    'GET /hop HTTP/1.1\r\nHost: h\r\nConnection: close, x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nUpgrade: foo\r\nX-Keep: yes\r\n\r\n',
  );
  const body = JSON.parse(
    reply.slice(reply.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ''),
  ) as Echo;
  for (const h of ['x-hop', 'keep-alive', 'proxy-authorization', 'te', 'upgrade'])
    assert.equal(body.headers[h], undefined, h);
  assert.equal(body.headers['x-keep'], 'yes');
});

test('hop-by-hop response headers are dropped; Location and Content-Location point back at the client', async () => {
  const r = await send(`${gh.url()}/r/go`, { headers: { host: 'www.example.com' } });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, 'http://www.example.com/r/login?next=1', 'stripped prefix put back');
  assert.equal(r.headers['content-location'], 'http://www.example.com/r/here');
  assert.equal(r.headers['x-internal'], undefined);
  assert.equal(r.headers['keep-alive'] === 'timeout=5', false);
  assert.equal(r.headers.via, '1.1 origin-cache, 1.1 gh-test');
  const other = await send(`${gh.url()}/r/elsewhere`, { headers: { host: 'www.example.com' } });
  assert.equal(other.headers.location, 'https://other.example.net/x', 'foreign locations are left alone');
});

test("stripPrefix and rewrite change the path and keep the query; passHostHeader: false sends the target's host", async () => {
  const a = (await json(`${gh.url()}/api/users/7?full=1`)).data as unknown as Echo;
  assert.equal(a.url, '/users/7?full=1');
  const b = (await json(`${gh.url()}/old/a/b?q=x`)).data as unknown as Echo;
  assert.equal(b.url, '/new/a/b?q=x');
  const c = (await json(`${gh.url()}/target-host`, { headers: { host: 'public.example' } }))
    .data as unknown as Echo;
  assert.equal(c.headers.host, `127.0.0.1:${echo.port}`);
  assert.equal(c.headers['x-forwarded-host'], 'public.example');
});

test('dot segments are resolved before routing, and a path above the root is refused', async () => {
  const e = (await json(`${gh.url()}/x`)).data as unknown as Echo;
  assert.equal(e.url, '/x');
  const reply = await raw(gh.url(), 'GET /api/%2e%2e/old/z HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  const body = reply.slice(reply.indexOf('\r\n\r\n') + 4);
  assert.match(
    body,
    /"url":"\/new\/z"/,
    'routed by the normalised path, and that path is what the origin sees',
  );
  const bad = await raw(gh.url(), 'GET /../etc/passwd HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  assert.match(bad, /^HTTP\/1\.1 400 /);
});

test('X-Request-Id is generated when absent, kept when sane, and returned to the client', async () => {
  const a = await json(`${gh.url()}/id`);
  const id = a.reply.headers['x-request-id'] as string;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal((a.data as unknown as Echo).headers['x-request-id'], id);
  const b = await json(`${gh.url()}/id`, { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(b.reply.headers['x-request-id'], 'abc-123');
  assert.equal((b.data as unknown as Echo).headers['x-request-id'], 'abc-123');
  const c = await json(`${gh.url()}/id`, { headers: { 'x-request-id': 'bad id with spaces"' } });
  assert.match(c.reply.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
});

test('a request that already passed this Gatehouse is refused as a loop (508)', async () => {
  const r = await send(`${gh.url()}/loop`, { headers: { via: '1.1 edge, 1.1 gh-test' } });
  assert.equal(r.status, 508);
  assert.match(r.body, /loop_detected/);
  const ok = await send(`${gh.url()}/loop`, { headers: { via: '1.1 other-gatehouse' } });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /"via":"1.1 other-gatehouse, 1.1 gh-test"/);
});

test('request and response bodies pass through intact, with their framing', async () => {
  const body = Buffer.alloc(300_000, 'x');
  const e = (await json(`${gh.url()}/upload`, { method: 'POST', body })).data as unknown as Echo;
  assert.equal(e.bytes, body.length);
  assert.equal(e.headers['content-length'], String(body.length));
  const chunked = await raw(
    gh.url(),
    'POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
  );
  assert.match(chunked, /"bytes":11/);
  assert.match(chunked, /"transfer-encoding":"chunked"/);
});

test('the access log has one line per request with the route, target and timings', async () => {
  const before = gh.log.lines.length;
  await send(`${gh.url()}/api/logged?token=secret`, { headers: { 'x-request-id': 'log-me-1' } });
  const entries = gh.log.entries().slice(before);
  assert.equal(entries.length, 1);
  const e = entries[0];
  assert.equal(e.requestId, 'log-me-1');
  assert.equal(e.method, 'GET');
  assert.equal(e.path, '/api/logged', 'the query string (often carrying tokens) is not logged');
  assert.equal(e.status, 200);
  assert.equal(e.route, 'strip');
  assert.equal(e.upstream, 'echo');
  assert.equal(e.target, echo.url);
  assert.equal(e.clientIp, '127.0.0.1');
  assert.equal(typeof e.upstreamMs, 'number');
  assert.equal(typeof e.durationMs, 'number');
  assert.ok((e.bytes as number) > 0);
  assert.equal(e.reason, undefined);
});
