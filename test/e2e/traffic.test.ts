// Traffic management on the request path: weighted splits with sticky sides, cookie matchers,
// redirect and respond routes, placeholders, error pages, fault injection.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { type Running, start, testConfig } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { type Origin, origin } from '../helpers/origin.ts';

const dir = mkdtempSync(join(tmpdir(), 'gh-traffic-'));
const page5xx = join(dir, '5xx.html');
const page404 = join(dir, '404.html');
writeFileSync(page5xx, '<h1>Sorry: {status} {status.text}</h1><p>id {request.id} ({reason})</p>');
writeFileSync(page404, '<h1>Nothing at this address</h1><p>{request.id}</p>');

let stable: Origin;
let canary: Origin;
let gh: Running;
const TOKEN = '0123456789abcdef0123';

const named = (name: string) =>
  origin((req, res) => {
    const status = /\/status\/(\d+)/.exec(req.url ?? '')?.[1];
    res.writeHead(status ? Number(status) : 200, { 'content-type': 'text/plain', 'x-side': name });
    res.end(`${name} ${req.url} country=${req.headers['x-client-country'] ?? ''}`);
  });

const yaml = (stableWeight: number, canaryWeight: number) => `
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
errorPages:
  - { statuses: [502, 503, 504], file: ${page5xx} }
  - { statuses: [404], file: ${page404} }
middlewares:
  chaos: { faultInjection: { abort: { percent: 100, status: 500 } } }
  chaos-header: { faultInjection: { allowHeader: true } }
  stamp:
    headers:
      request: { set: { x-client-country: "{geo.country}", x-start: "{time.msec}", x-route: "{route}", x-id: "{request.id}", x-cap: "{match.1}" } }
      response: { set: { x-served-by: "{route} for {client.ip}" } }
routes:
  - name: beta-testers
    match: { pathPrefix: /shop, cookies: { beta: "1" } }
    upstream: canary
  - name: shop
    match: { pathPrefix: /shop }
    split: [{ upstream: stable, weight: ${stableWeight} }, { upstream: canary, weight: ${canaryWeight} }]
    sticky: { cookie: gh_split, maxAge: 1h, secret: "a-long-enough-secret-for-tests" }
  - name: plain-split
    match: { pathPrefix: /plain }
    split: [{ upstream: stable, weight: 95 }, { upstream: canary, weight: 5 }]
  - name: old-blog
    match: { pathPrefix: /blog/ }
    redirect: { to: "https://blog.example.com{path}{query}", status: 301 }
  - name: ping
    match: { path: /healthz }
    respond: { status: 200, body: "ok {method} {host}\\n", contentType: text/plain, headers: { x-id: "{request.id}" } }
  - name: regex
    match: { pathRegex: "^/items/([0-9]+)$" }
    middlewares: [stamp]
    upstream: stable
  - name: chaos
    match: { pathPrefix: /chaos }
    middlewares: [chaos]
    upstream: stable
  - name: chaos-header
    match: { pathPrefix: /fault }
    middlewares: [chaos-header]
    upstream: stable
  - name: dead
    match: { pathPrefix: /dead }
    upstream: dead
  - name: own-pages
    match: { pathPrefix: /intercept }
    errorPages: [{ statuses: [500, 503], file: ${page5xx}, intercept: true }]
    upstream: stable
upstreams:
  stable: { targets: [{ url: "${stable.url}" }] }
  canary: { targets: [{ url: "${canary.url}" }] }
  dead: { targets: [{ url: "http://127.0.0.1:1" }], retry: { attempts: 1 } }
`;

before(async () => {
  stable = await named('stable');
  canary = await named('canary');
  gh = await start(yaml(95, 5));
});
after(async () => {
  await gh.close();
  await stable.close();
  await canary.close();
});

const adminUrl = () => (gh.gh.admin as { url: string }).url;

test('a split sends each side its exact share, smoothly', async () => {
  const agent = new Agent({ connections: 8 });
  const sides: string[] = [];
  try {
    const batch = async (n: number) => {
      for (let i = 0; i < n; i += 50)
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            const r = await request(`${gh.url()}/plain`, { dispatcher: agent });
            sides.push(String(r.headers['x-side']));
            await r.body.dump();
          }),
        );
    };
    await batch(10_000);
  } finally {
    await agent.close();
  }
  const canaryShare = sides.filter((s) => s === 'canary').length / sides.length;
  assert.ok(Math.abs(canaryShare - 0.05) <= 0.01, `canary share ${canaryShare}`);
  // Smooth: smooth weighted round robin gives the canary exactly one in every 20 picks, so no
  // 100-request window holds more than a few more than 5 of them.
  let worst = 0;
  const picks: number[] = sides.map((s) => (s === 'canary' ? 1 : 0));
  for (let i = 0; i + 100 <= picks.length; i += 100)
    worst = Math.max(
      worst,
      picks.slice(i, i + 100).reduce((a, b) => a + b, 0),
    );
  assert.ok(worst <= 10, `a window of 100 held ${worst} canary requests`);
});

test('sticky: the side is kept by a signed cookie; an edited cookie is not believed', async () => {
  const first = await send(`${gh.url()}/shop/x`);
  const cookie = String(first.headers['set-cookie']);
  assert.match(
    cookie,
    /^gh_split=(stable|canary)\.[A-Za-z0-9_-]{22}; Max-Age=3600; Path=\/; HttpOnly; SameSite=Lax$/,
  );
  const side = first.headers['x-side'];
  const value = cookie.split(';')[0];
  for (let i = 0; i < 30; i++) {
    const r = await send(`${gh.url()}/shop/x`, { headers: { cookie: value } });
    assert.equal(r.headers['x-side'], side);
    assert.equal(r.headers['set-cookie'], undefined, 'a kept side sets no new cookie');
  }
  // Edited to the other side with the old signature, or unsigned: reassigned (and a new cookie set).
  const other = side === 'stable' ? 'canary' : 'stable';
  const forged = `gh_split=${other}.${value.split('.')[1]}`;
  const r = await send(`${gh.url()}/shop/x`, { headers: { cookie: forged } });
  assert.ok(r.headers['set-cookie'], 'a forged cookie is replaced');
  const unsigned = await send(`${gh.url()}/shop/x`, { headers: { cookie: `gh_split=${other}` } });
  assert.ok(unsigned.headers['set-cookie']);
});

test('sticky clients keep their side across a reload that changes the weights, and across the admin API', async () => {
  const clients: { cookie: string; side: string }[] = [];
  for (let i = 0; i < 60; i++) {
    const r = await send(`${gh.url()}/shop/y`);
    clients.push({
      cookie: String(r.headers['set-cookie']).split(';')[0],
      side: String(r.headers['x-side']),
    });
  }
  assert.ok(
    clients.some((c) => c.side === 'canary'),
    'some clients on the canary',
  );
  gh.gh.reload(testConfig(yaml(50, 50)));
  for (const c of clients)
    assert.equal(
      (await send(`${gh.url()}/shop/y`, { headers: { cookie: c.cookie } })).headers['x-side'],
      c.side,
    );
  // The admin API moves the weights at run time; sticky clients stay while their side has weight.
  const put = await send(`${adminUrl()}/api/v1/routes/shop/split`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ weights: { stable: 1, canary: 99 } }),
  });
  assert.equal(put.status, 200, put.body);
  for (const c of clients)
    assert.equal(
      (await send(`${gh.url()}/shop/y`, { headers: { cookie: c.cookie } })).headers['x-side'],
      c.side,
    );
  // New clients follow the new weights.
  let canaryNew = 0;
  for (let i = 0; i < 100; i++)
    if ((await send(`${gh.url()}/shop/z`)).headers['x-side'] === 'canary') canaryNew++;
  assert.ok(canaryNew >= 95, `new clients on the canary: ${canaryNew}`);
  // Draining a side (weight 0) moves its sticky clients.
  await send(`${adminUrl()}/api/v1/routes/shop/split`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ weights: { stable: 1, canary: 0 } }),
  });
  const onCanary = clients.find((c) => c.side === 'canary') as { cookie: string };
  assert.equal(
    (await send(`${gh.url()}/shop/y`, { headers: { cookie: onCanary.cookie } })).headers['x-side'],
    'stable',
  );
  const bad = await send(`${adminUrl()}/api/v1/routes/shop/split`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ weights: { nosuch: 1 } }),
  });
  assert.equal(bad.status, 400);
  const metrics = (await send(`${adminUrl()}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }))
    .body;
  assert.match(metrics, /gatehouse_split_requests_total\{route="shop",upstream="canary"\} \d+/);
  assert.match(metrics, /gatehouse_requests_total\{route="shop",upstream="canary",/);
  gh.gh.reload(testConfig(yaml(95, 5)));
});

test('a cookie matcher sends opted-in clients to the canary', async () => {
  const r = await send(`${gh.url()}/shop/x`, { headers: { cookie: 'theme=dark; beta=1' } });
  assert.equal(r.headers['x-side'], 'canary');
  assert.equal(r.headers['set-cookie'], undefined);
  const no = await send(`${gh.url()}/plain`, { headers: { cookie: 'beta=2' } });
  assert.ok(no.status === 200);
});

test('redirect routes fill in placeholders; respond routes answer without a backend', async () => {
  const r = await send(`${gh.url()}/blog/2024/post?ref=x`);
  assert.equal(r.status, 301);
  assert.equal(r.headers.location, 'https://blog.example.com/blog/2024/post?ref=x');
  const p = await send(`${gh.url()}/healthz`);
  assert.equal(p.status, 200);
  assert.equal(p.body, `ok GET 127.0.0.1\n`);
  assert.equal(p.headers['content-type'], 'text/plain');
  assert.equal(p.headers['x-id'], p.headers['x-request-id']);
  const head = await send(`${gh.url()}/healthz`, { method: 'HEAD' });
  assert.equal(head.body, '');
  assert.equal(stable.seen.filter((s) => s.url === '/healthz').length, 0);
});

test('header placeholders: route, request id, captures, client address, time', async () => {
  const r = await send(`${gh.url()}/items/42`);
  const seen = stable.seen.at(-1)?.headers ?? {};
  assert.equal(seen['x-route'], 'regex');
  assert.equal(seen['x-cap'], '42');
  assert.equal(seen['x-id'], r.headers['x-request-id']);
  assert.equal(seen['x-client-country'], '');
  assert.match(String(seen['x-start']), /^\d{10}\.\d{3}$/);
  assert.equal(r.headers['x-served-by'], 'regex for 127.0.0.1');
});

test("error pages: Gatehouse's own answers get the operator's page with the request id", async () => {
  const r = await send(`${gh.url()}/dead`);
  assert.equal(r.status, 502);
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(
    r.body,
    `<h1>Sorry: 502 Bad Gateway</h1><p>id ${r.headers['x-request-id']} (upstream_connect_failed)</p>`,
  );
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
  const nf = await send(`${gh.url()}/nowhere-routed`);
  assert.equal(nf.status, 404);
  assert.equal(nf.body, `<h1>Nothing at this address</h1><p>${nf.headers['x-request-id']}</p>`);
  // Upstream answers are left alone unless the page intercepts them.
  const up500 = await send(`${gh.url()}/intercept/status/500`);
  assert.equal(up500.status, 500);
  assert.match(up500.body, /^<h1>Sorry: 500 Internal Server Error<\/h1>/);
  const up404 = await send(`${gh.url()}/intercept/status/404`);
  assert.equal(up404.status, 404);
  assert.match(
    up404.body,
    /^stable /,
    'a 404 from the upstream is not intercepted (no intercept page for it)',
  );
});

test('fault injection: abort by percentage; by header only where allowed, and the header never goes upstream', async () => {
  const r = await send(`${gh.url()}/chaos`);
  assert.equal(r.status, 500);
  assert.match(r.body, /fault injected/);
  const f = await send(`${gh.url()}/fault`, { headers: { 'x-gatehouse-fault': 'abort=418' } });
  assert.equal(f.status, 418);
  // An injected status with an error page gets the page, as Gatehouse's own answers do.
  const paged = await send(`${gh.url()}/fault`, { headers: { 'x-gatehouse-fault': 'abort=503' } });
  assert.equal(paged.status, 503);
  assert.match(
    paged.body,
    /^<h1>Sorry: 503 Service Unavailable<\/h1><p>id [0-9a-f-]+ \(fault_injected\)<\/p>$/,
  );
  const t0 = performance.now();
  const d = await send(`${gh.url()}/fault`, { headers: { 'x-gatehouse-fault': 'delay=150ms' } });
  assert.equal(d.status, 200);
  assert.ok(performance.now() - t0 >= 140);
  assert.equal(stable.seen.at(-1)?.headers['x-gatehouse-fault'], undefined);
  // On a route without allowHeader the header does nothing.
  const ignored = await send(`${gh.url()}/items/7`, { headers: { 'x-gatehouse-fault': 'abort=500' } });
  assert.equal(ignored.status, 200);
  const log = gh.log.entries().find((e) => e.route === 'chaos');
  assert.equal(log?.reason, 'fault_injected');
});
