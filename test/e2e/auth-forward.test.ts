// forwardAuth end to end, on every transport (HTTP/1.1 plain and TLS, HTTP/2 over TLS, h2c, WebSocket
// upgrades plain and TLS), with a real auth service (Traefik ForwardAuth / nginx auth_request
// semantics): what it sees of the request, 2xx with copyHeaders (a client cannot forge them), a 302
// to a login page relayed with its cookies, 401/403/5xx relayed, and the service down or slow
// (fail closed with 503 auth_unavailable).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { validateText } from '../../src/config/validate.ts';
import { ALL, echoed, header, skipWithoutOpenssl, UPGRADES, world, wsEcho } from '../auth/world.ts';
import { until } from '../helpers/gatehouse.ts';

interface AuthService {
  url: string;
  seen: { url: string; method: string; headers: IncomingMessage['headers']; body: number }[];
  server: Server;
  close(): Promise<void>;
}

/** The auth service: decides by the Authorization it is sent. */
async function authService(): Promise<AuthService> {
  const seen: AuthService['seen'] = [];
  const server = createServer((req, res) => {
    let body = 0;
    req.on('data', (c: Buffer) => {
      body += c.length;
    });
    req.on('end', () => {
      seen.push({ url: req.url ?? '', method: req.method ?? '', headers: req.headers, body });
      const auth = req.headers.authorization ?? '';
      const send = (status: number, headers: Record<string, string | string[]>, text = '') => {
        res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (auth === 'Bearer good')
        return send(
          200,
          { 'x-auth-user': 'alice', 'x-auth-groups': 'admins,dev', 'x-not-copied': 'no' },
          'ok',
        );
      if (auth === 'Bearer deny') return send(403, { 'content-type': 'text/plain' }, 'not for you');
      if (auth === 'Bearer basic')
        return send(401, { 'www-authenticate': 'Basic realm="sso"', 'content-type': 'text/plain' }, 'who?');
      if (auth === 'Bearer big') return send(401, { 'content-type': 'text/plain' }, 'x'.repeat(100_000));
      if (auth === 'Bearer binary') {
        res.writeHead(401, { 'content-type': 'application/octet-stream', 'content-length': 3 });
        return res.end(Buffer.from([0xff, 0xfe, 0x00]));
      }
      if (auth === 'Bearer broken') return send(500, { 'content-type': 'text/plain' }, 'oops');
      if (auth === 'Bearer slow') {
        setTimeout(() => send(200, { 'x-auth-user': 'late' }), 3000).unref();
        return;
      }
      const rd = encodeURIComponent(
        `${req.headers['x-forwarded-proto']}://${req.headers['x-forwarded-host']}${req.headers['x-forwarded-uri']}`,
      );
      send(
        302,
        {
          location: `https://login.example.test/?rd=${rd}`,
          'set-cookie': ['csrf=abc; Path=/; HttpOnly', 'flow=xyz; Path=/; Secure'],
          'content-type': 'text/html',
          connection: 'keep-alive',
          'x-request-id': 'from-auth',
        },
        '<a href="https://login.example.test/">login</a>',
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/verify?svc=gh`,
    seen,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const mw = (url: string, timeout = '500ms') => `  sso:
    forwardAuth:
      url: "${url}"
      requestHeaders: [authorization, cookie, x-extra]
      copyHeaders: [x-auth-user, x-auth-groups]
      timeout: ${timeout}`;

test('2xx lets the request through with copyHeaders; the service sees method, URI, client and chosen headers', {
  skip: skipWithoutOpenssl,
}, async () => {
  const auth = await authService();
  const w = await world(mw(auth.url), 'sso');
  try {
    for (const tr of ALL) {
      const before = auth.seen.length;
      const a = await w.ask(tr, {
        method: tr === 'ws' || tr === 'wss' ? 'GET' : 'POST',
        target: '/app/../orders/%7e1?page=2',
        body: tr === 'ws' || tr === 'wss' ? undefined : 'payload=1',
        headers: [
          ['authorization', 'Bearer good'],
          ['x-auth-user', 'root'],
          ['x-auth-groups', 'everyone'],
          ['x-extra', 'e1'],
          ['x-secret', 'not for the auth service'],
          ['x-forwarded-for', '6.6.6.6'],
          ['cookie', 'a=1'],
        ],
      });
      assert.equal(a.status, 200, `${tr}: ${a.raw.slice(0, 300)}`);
      const up = echoed(a);
      assert.equal(up.headers['x-auth-user'], 'alice', tr);
      assert.equal(up.headers['x-auth-groups'], 'admins,dev', tr);
      assert.equal(up.headers['x-not-copied'], undefined);
      assert.equal(auth.seen.length, before + 1, `${tr}: one auth call`);
      const asked = auth.seen[before];
      assert.equal(asked.method, 'GET');
      assert.equal(asked.url, '/verify?svc=gh');
      assert.equal(asked.body, 0, 'never the request body');
      const h = asked.headers;
      assert.equal(h['x-forwarded-method'], tr === 'ws' || tr === 'wss' ? 'GET' : 'POST', tr);
      assert.equal(h['x-forwarded-uri'], '/orders/~1?page=2', `${tr}: the path as routed`);
      assert.equal(h['x-forwarded-for'], '127.0.0.1', `${tr}: the client address Gatehouse resolved`);
      assert.equal(h['x-forwarded-proto'], tr === 'h1s' || tr === 'h2' || tr === 'wss' ? 'https' : 'http');
      assert.equal(h['x-forwarded-host'], 'gh.test');
      assert.equal(h.authorization, 'Bearer good');
      assert.equal(h.cookie, 'a=1');
      assert.equal(h['x-extra'], 'e1');
      assert.equal(h['x-secret'], undefined, 'only the chosen headers');
      assert.equal(h['x-auth-user'], undefined);
      assert.match(String(h['x-request-id']), /\S/);
    }
    for (const s of w.up.seen)
      assert.equal(
        s.rawHeaders.filter((n) => n.toLowerCase() === 'x-auth-user').length,
        1,
        'one x-auth-user',
      );
  } finally {
    await w.close();
    await auth.close();
  }
});

test('refusals are relayed: a 302 to the login page with its cookies, 401, 403, 5xx; an oversized body is left out', {
  skip: skipWithoutOpenssl,
}, async () => {
  const auth = await authService();
  const w = await world(mw(auth.url), 'sso');
  try {
    for (const tr of ALL) {
      const login = await w.ask(tr, { target: '/private?x=1', headers: [['x-auth-user', 'root']] });
      assert.equal(login.status, 302, tr);
      assert.equal(
        header(login, 'location'),
        `https://login.example.test/?rd=${encodeURIComponent(`${tr === 'h1s' || tr === 'h2' || tr === 'wss' ? 'https' : 'http'}://gh.test/private?x=1`)}`,
      );
      assert.match(login.raw + JSON.stringify(login.headers), /csrf=abc/);
      assert.match(login.raw + JSON.stringify(login.headers), /flow=xyz/);
      assert.notEqual(header(login, 'x-request-id'), 'from-auth', 'the request id is Gatehouse’s');
      if (tr !== 'ws' && tr !== 'wss' && tr !== 'h2' && tr !== 'h2c') {
        assert.equal((login.raw.match(/\r\nset-cookie: /gi) ?? []).length, 2, `${tr}: two Set-Cookie fields`);
        assert.doesNotMatch(login.raw, /\r\nconnection: keep-alive/i);
      }
      assert.equal(login.body, '<a href="https://login.example.test/">login</a>', tr);
      const basic = await w.ask(tr, { target: '/', headers: [['authorization', 'Bearer basic']] });
      assert.equal(basic.status, 401, tr);
      assert.equal(header(basic, 'www-authenticate'), 'Basic realm="sso"');
      assert.equal(basic.body, 'who?');
      const deny = await w.ask(tr, { target: '/', headers: [['authorization', 'Bearer deny']] });
      assert.equal(deny.status, 403, tr);
      assert.equal(deny.body, 'not for you');
      const big = await w.ask(tr, { target: '/', headers: [['authorization', 'Bearer big']] });
      assert.equal(big.status, 401, tr);
      assert.equal(big.body, '', `${tr}: a body over 64 KiB is not relayed`);
      const binary = await w.ask(tr, { target: '/', headers: [['authorization', 'Bearer binary']] });
      assert.equal(binary.status, 401, tr);
      assert.equal(binary.body, '', `${tr}: a body that is not UTF-8 is not relayed`);
      assert.equal(header(binary, 'content-type'), undefined);
      const broken = await w.ask(tr, { target: '/', headers: [['authorization', 'Bearer broken']] });
      assert.equal(broken.status, 500, tr);
      if (tr === 'h2' || tr === 'h2c') continue; // node:http2's client sends one Authorization field
      // Two Authorization fields: the service sees both (as the upstream would), not just the first.
      const two = await w.ask(tr, {
        target: '/',
        headers: [
          ['authorization', 'Bearer good'],
          ['authorization', 'Bearer other'],
        ],
      });
      assert.equal(two.status, 302, tr);
      assert.equal(auth.seen.at(-1)?.headers.authorization, 'Bearer good, Bearer other');
    }
    assert.equal(w.up.seen.length, 0, 'nothing got through');
    await until(() => w.gh.log.lines.length >= ALL.length * 6 + 4, 3000, 'log lines');
    const lines = w.gh.log.entries();
    const by = (status: number) => new Set(lines.filter((l) => l.status === status).map((l) => l.reason));
    assert.deepEqual(by(302), new Set(['unauthorized']));
    assert.deepEqual(by(403), new Set(['forbidden']));
    assert.deepEqual(by(500), new Set(['auth_unavailable']));
  } finally {
    await w.close();
    await auth.close();
  }
});

test('the auth service down or slow: 503 auth_unavailable, fail closed', {
  skip: skipWithoutOpenssl,
}, async () => {
  const auth = await authService();
  const w = await world(mw(auth.url, '300ms'), 'sso');
  try {
    for (const tr of ALL) {
      const slow = await w.ask(tr, { target: '/', headers: [['authorization', 'Bearer slow']] });
      assert.equal(slow.status, 503, `${tr}: slow`);
      assert.match(slow.body, /auth_unavailable/);
    }
    await auth.close();
    for (const tr of ALL) {
      const down = await w.ask(tr, { target: '/', headers: [['authorization', 'Bearer good']] });
      assert.equal(down.status, 503, `${tr}: down`);
      assert.match(down.body, /auth_unavailable/);
      assert.doesNotMatch(down.body, /127\.0\.0\.1/, 'no internal address');
    }
    assert.equal(w.up.seen.length, 0);
  } finally {
    await w.close();
    await auth.close();
  }
});

test('WebSocket upgrades: the refusal is relayed, an allowed handshake opens with the copied headers', {
  skip: skipWithoutOpenssl,
}, async () => {
  const auth = await authService();
  const w = await world(mw(auth.url), 'sso');
  try {
    for (const tls of [false, true]) {
      const ca = tls ? w.L.ca : undefined;
      assert.equal(await wsEcho(`${w.wsUrl(tls)}/ws`, { 'x-auth-user': 'root' }, ca), 'status:302');
      assert.equal(await wsEcho(`${w.wsUrl(tls)}/ws`, { authorization: 'Bearer deny' }, ca), 'status:403');
      assert.equal(
        await wsEcho(`${w.wsUrl(tls)}/ws`, { authorization: 'Bearer good', 'x-auth-user': 'root' }, ca),
        'echo:hello',
      );
    }
    assert.equal(w.upgrades.length, 2);
    for (const u of w.upgrades) assert.equal(u['x-auth-user'], 'alice');
    for (const tr of UPGRADES) {
      const a = await w.ask(tr, { target: '/ws' });
      assert.equal(a.status, 302, tr);
      assert.match(a.raw, /\r\nconnection: close\r\n/i);
    }
  } finally {
    await w.close();
    await auth.close();
  }
});

test('validation: copyHeaders and requestHeaders may not name headers the proxy owns', () => {
  const check = (fa: string) =>
    validateText(
      `
listeners: [{ name: web, address: 127.0.0.1:0 }]
middlewares:
  sso: { forwardAuth: { url: "http://127.0.0.1:1/auth", ${fa} } }
routes: [{ name: r, middlewares: [sso], upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`,
      'gh.yaml',
    ).errors.map((e) => `${e.key}: ${e.reason}`);
  assert.deepEqual(check('copyHeaders: [x-user]'), []);
  assert.match(check('copyHeaders: [x-user, Content-Length]').join(), /copyHeaders\.1: content-length/);
  assert.match(check('copyHeaders: [x-forwarded-for]').join(), /copyHeaders\.0: x-forwarded-for/);
  assert.match(check('requestHeaders: [x-forwarded-uri]').join(), /requestHeaders\.0: x-forwarded-uri/);
  assert.match(check('requestHeaders: [host]').join(), /requestHeaders\.0: host/);
});
