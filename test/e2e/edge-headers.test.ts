// CORS and security headers at the edge, on every transport, and on Gatehouse's own answers
// (401, 403, 404 pages from a route, 429, 502) as well as the upstream's.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { validateText } from '../../src/config/validate.ts';
import { ALL, type Answer, ask, type Listeners, type Transport } from '../helpers/attack.ts';
import { makeCA, makeCert, tempDir } from '../helpers/certs.ts';
import { type Running, start } from '../helpers/gatehouse.ts';
import { type Origin, origin } from '../helpers/origin.ts';
import { hasCommand } from '../helpers/require.ts';

const HAVE_OPENSSL = hasCommand('openssl') || process.env.GATEHOUSE_TEST_REQUIRE_ALL === '1';
const TRANSPORTS: readonly Transport[] = HAVE_OPENSSL
  ? ALL.filter((t) => t !== 'ws' && t !== 'wss')
  : ['h1', 'h2c'];
if (!HAVE_OPENSSL) console.log('edge-headers: openssl is not installed; TLS transports (h1s, h2) skipped');

let up: Origin;
let gh: Running;
let L: Listeners;

before(async () => {
  up = await origin((req, res) => {
    res.writeHead(200, {
      'content-type': 'text/plain',
      server: 'Apache/2.4.1 (Unix)',
      'x-powered-by': 'PHP/5.1',
      'access-control-allow-origin': '*',
      'content-security-policy': "default-src 'self'",
    });
    res.end(`ok ${req.method}`);
  });
  const dir = tempDir();
  const ca = HAVE_OPENSSL ? makeCA(dir) : undefined;
  const cert = ca ? makeCert(dir, ca, 'gh.test', ['gh.test']) : undefined;
  const tls = cert
    ? `  - name: tls
    address: 127.0.0.1:0
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }] }`
    : '';
  gh = await start(`
listeners:
  - { name: plain, address: 127.0.0.1:0 }
  - { name: h2c, address: 127.0.0.1:0, h2c: true }
${tls}
middlewares:
  api-cors: { cors: { origins: [https://app.example.com], methods: [GET, POST], headers: [x-token], exposeHeaders: [x-total], credentials: true, maxAge: 5m } }
  open-cors: { cors: { origins: ["*"] } }
  hardened: { securityHeaders: { preset: strict } }
  limit: { rateLimit: { rate: 1, per: 1h, burst: 1 } }
  lan: { ipFilter: { allow: [10.0.0.0/8] } }
routes:
  - { name: api, match: { pathPrefix: /api }, middlewares: [hardened, api-cors], upstream: up }
  - { name: open, match: { pathPrefix: /open }, middlewares: [open-cors], upstream: up }
  - { name: limited, match: { pathPrefix: /limited }, middlewares: [hardened, api-cors, limit], upstream: up }
  - { name: lan, match: { pathPrefix: /lan }, middlewares: [hardened, api-cors, lan], upstream: up }
  - { name: dead, match: { pathPrefix: /dead }, middlewares: [hardened, api-cors], upstream: dead }
upstreams:
  up: { targets: [{ url: "${up.url}" }] }
  dead: { targets: [{ url: "http://127.0.0.1:1" }], retry: { attempts: 1 } }
`);
  L = {
    plain: gh.url('plain'),
    h2c: gh.url('h2c'),
    tls: HAVE_OPENSSL ? gh.url('tls') : '',
    ca: ca?.cert ?? '',
    servername: 'gh.test',
  };
});
after(async () => {
  await gh.close();
  await up.close();
});

const ORIGIN = 'https://app.example.com';
const lc = (t: Transport, h: [string, string][]) =>
  t === 'h2' || t === 'h2c' ? h.map(([k, v]) => [k.toLowerCase(), v] as [string, string]) : h;

function hardened(r: Answer, t: Transport, what: string): void {
  assert.equal(r.headers['x-content-type-options'], 'nosniff', what);
  assert.equal(r.headers['x-frame-options'], 'DENY', what);
  assert.equal(r.headers['referrer-policy'], 'no-referrer', what);
  assert.equal(r.headers.server, undefined, `${what}: the upstream's Server banner is removed`);
  assert.equal(r.headers['x-powered-by'], undefined, what);
  if (t === 'h1s' || t === 'h2')
    assert.match(
      String(r.headers['strict-transport-security']),
      /^max-age=31536000; includeSubDomains$/,
      what,
    );
  else assert.equal(r.headers['strict-transport-security'], undefined, `${what}: no HSTS over plain HTTP`);
}

test('a preflight is answered at the edge; a disallowed origin, method or header gets 403', async () => {
  for (const t of TRANSPORTS) {
    const n = up.seen.length;
    const r = await ask(L, t, {
      method: 'OPTIONS',
      target: '/api/items',
      headers: lc(t, [
        ['Origin', ORIGIN],
        ['Access-Control-Request-Method', 'POST'],
        ['Access-Control-Request-Headers', 'X-Token, Content-Type'],
      ]),
    });
    assert.equal(r.status, 204, t);
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN, t);
    assert.equal(r.headers['access-control-allow-methods'], 'GET, POST', t);
    assert.equal(r.headers['access-control-allow-headers'], 'x-token, content-type', t);
    assert.equal(r.headers['access-control-allow-credentials'], 'true', t);
    assert.equal(r.headers['access-control-max-age'], '300', t);
    assert.equal(r.headers['content-length'], undefined, `${t}: a 204 has no Content-Length`);
    hardened(r, t, `${t} preflight`);
    assert.equal(up.seen.length, n, `${t}: the preflight never reached the upstream`);
    for (const [why, headers] of [
      [
        'origin',
        [
          ['Origin', 'https://evil.example'],
          ['Access-Control-Request-Method', 'GET'],
        ],
      ],
      [
        'method',
        [
          ['Origin', ORIGIN],
          ['Access-Control-Request-Method', 'DELETE'],
        ],
      ],
      [
        'header',
        [
          ['Origin', ORIGIN],
          ['Access-Control-Request-Method', 'GET'],
          ['Access-Control-Request-Headers', 'x-admin'],
        ],
      ],
    ] as const) {
      const bad = await ask(L, t, {
        method: 'OPTIONS',
        target: '/api/items',
        headers: lc(t, headers.map((h) => [...h]) as [string, string][]),
      });
      assert.equal(bad.status, 403, `${t} ${why}`);
      assert.equal(bad.headers['access-control-allow-origin'], undefined, `${t} ${why}`);
    }
  }
});

test("actual requests: the exact origin echoed with Vary: Origin; another origin gets no CORS fields; the upstream's * is not passed on", async () => {
  for (const t of TRANSPORTS) {
    const r = await ask(L, t, { target: '/api/items', headers: lc(t, [['Origin', ORIGIN]]) });
    assert.equal(r.status, 200, t);
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN, t);
    assert.equal(r.headers['access-control-allow-credentials'], 'true', t);
    assert.equal(r.headers['access-control-expose-headers'], 'x-total', t);
    assert.match(String(r.headers.vary), /Origin/, t);
    assert.equal(r.headers['content-security-policy'], "default-src 'self'; frame-ancestors 'none'", t);
    hardened(r, t, `${t} actual`);
    const evil = await ask(L, t, {
      target: '/api/items',
      headers: lc(t, [['Origin', 'https://evil.example']]),
    });
    assert.equal(
      evil.headers['access-control-allow-origin'],
      undefined,
      `${t}: the upstream's "*" was removed`,
    );
    const open = await ask(L, t, { target: '/open', headers: lc(t, [['Origin', 'https://anyone.example']]) });
    assert.equal(open.headers['access-control-allow-origin'], '*', t);
  }
});

test("Gatehouse's own answers carry the security and CORS headers: 403, 429, 502", async () => {
  for (const t of TRANSPORTS) {
    for (const [target, status] of [
      ['/lan', 403],
      ['/dead', 502],
    ] as const) {
      const r = await ask(L, t, { target, headers: lc(t, [['Origin', ORIGIN]]) });
      assert.equal(r.status, status, `${t} ${target}`);
      hardened(r, t, `${t} ${target}`);
      assert.equal(
        r.headers['access-control-allow-origin'],
        ORIGIN,
        `${t} ${target}: a page's script may read the error`,
      );
      assert.ok(r.headers['x-request-id'], `${t} ${target}`);
    }
  }
  // The rate limit is shared by all transports (one bucket per client address): the first passes.
  const statuses: number[] = [];
  for (const t of TRANSPORTS) {
    const r = await ask(L, t, { target: '/limited', headers: lc(t, [['Origin', ORIGIN]]) });
    statuses.push(r.status);
    if (r.status === 429) {
      hardened(r, t, `${t} 429`);
      assert.ok(r.headers['retry-after'], t);
      assert.equal(r.headers['access-control-allow-origin'], ORIGIN, t);
    }
  }
  assert.equal(statuses.filter((s) => s === 429).length, TRANSPORTS.length - 1);
});

test('validation refuses "*" with credentials', () => {
  const v = validateText(
    `listeners: [{ name: a, address: "127.0.0.1:0" }]
middlewares: { c: { cors: { origins: ["*"], credentials: true } } }
routes: []
`,
    'c.yaml',
  );
  assert.ok(
    v.errors.some((e) => /cannot be used with credentials/.test(e.reason)),
    JSON.stringify(v.errors),
  );
});
