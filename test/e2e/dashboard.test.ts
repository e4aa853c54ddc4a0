// The dashboard in a real browser (Debian's chromium, driven by playwright-core): sign in with the
// token, see routes and targets, watch the figures move with traffic, see a down target as down,
// check the page's totals against /metrics, and sign out. Saves a screenshot (docs/dashboard.png
// when DASHBOARD_SCREENSHOT points there).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { request } from 'undici';
import { start } from '../helpers/gatehouse.ts';
import { raw, send } from '../helpers/http.ts';
import { freePort } from '../helpers/net.ts';
import { origin } from '../helpers/origin.ts';
import { needCommand } from '../helpers/require.ts';

const TOKEN = 'dashboard-test-token-0123456789';

test('dashboard: sign in, routes and targets, live figures, a down target, numbers that match /metrics, sign out', async (t) => {
  if (!needCommand(t, 'chromium', 'the dashboard test drives a headless browser')) return;
  const app = await origin((req, res) => {
    if (req.url?.startsWith('/api/fail')) res.writeHead(503).end('busy');
    else setTimeout(() => res.end('ok'), 2);
  });
  const spare = await origin();
  const deadPort = await freePort();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
routes:
  - { name: api, match: { pathPrefix: /api }, upstream: api }
  - { name: site, match: { pathPrefix: / }, upstream: site }
upstreams:
  api:
    targets: [{ url: ${app.url} }, { url: "http://127.0.0.1:${deadPort}" }]
    healthCheck: { interval: 100ms, unhealthyAfter: 1 }
    retry: { attempts: 1 }
  site: { targets: [{ url: ${spare.url} }, { url: ${app.url}, backup: true }] }
`);
  const admin = gh.gh.admin?.url as string;
  const chromiumPath = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  const browser = await chromium
    .launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] })
    .catch(async (err) => {
      await gh.close();
      await Promise.all([app.close(), spare.close()]);
      throw err;
    });
  let traffic = true;
  const load = (async () => {
    let i = 0;
    while (traffic) {
      await send(`${gh.url()}/${i % 7 === 0 ? 'api/fail' : i % 2 ? 'api/x' : 'home'}`);
      i++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(admin);
    await page.fill('input[name=token]', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForSelector('tr[data-route="api"]');
    assert.equal(await page.title(), 'Gatehouse');
    assert.deepEqual(
      await page.$$eval('tr[data-route]', (rows) => rows.map((r) => r.getAttribute('data-route'))),
      ['api', 'site'],
    );
    assert.equal(await page.isHidden('#caches-panel'), true, 'no cache middleware: no Caches panel');
    assert.equal(await page.isHidden('#splits-panel'), true, 'no split route: no Splits panel');
    assert.equal(await page.isHidden('#mirrors-panel'), true, 'no mirror: no Mirrors panel');

    // The dead target shows as down; the others as healthy.
    await page.waitForSelector(`tr[data-target="http://127.0.0.1:${deadPort}"][data-state="unhealthy"]`, {
      timeout: 5000,
    });
    assert.equal(await page.getAttribute(`tr[data-target="${spare.url}"]`, 'data-state'), 'healthy');

    // Figures move with traffic: the total grows, the 5-second rate becomes positive, errors appear.
    const total = async () => Number(await page.textContent('tr[data-route="api"] [data-field="total"]'));
    const before = await total();
    await page.waitForFunction(
      (n) =>
        Number(document.querySelector('tr[data-route="api"] [data-field="total"]')?.textContent) > n + 20,
      before,
      { timeout: 10_000 },
    );
    await page.waitForFunction(
      () => Number(document.querySelector('tr[data-route="api"] [data-field="rps5"]')?.textContent) > 0,
      undefined,
      { timeout: 10_000 },
    );
    await page.waitForSelector('code[data-request-id]');
    const errorRate = await page.textContent('tr[data-route="api"] [data-field="errorRate"]');
    assert.notEqual(errorRate, '0.0%');
    // For the screenshot in the docs, let a little history build up first.
    await new Promise((r) => setTimeout(r, Number(process.env.DASHBOARD_SCREENSHOT_WAIT ?? 0) * 1000));
    await page.screenshot({
      path: process.env.DASHBOARD_SCREENSHOT ?? join(tmpdir(), 'gatehouse-dashboard.png'),
    });

    // Honest: once traffic stops and the page has refreshed, its totals are /metrics' totals.
    traffic = false;
    await load;
    await new Promise((r) => setTimeout(r, 1500));
    const metrics = await request(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const text = await metrics.body.text();
    const sum = (route: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`gatehouse_requests_total{route="${route}"`))
        .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    assert.equal(await total(), sum('api'));
    assert.equal(Number(await page.textContent('tr[data-route="site"] [data-field="total"]')), sum('site'));
    const shownErrors = await page.$$eval('code[data-request-id]', (els) => els.map((e) => e.textContent));
    const apiErrors = gh.log.entries().filter((e) => e.status === 503);
    assert.ok(
      shownErrors.includes(apiErrors.at(-1)?.requestId as string),
      'the latest error is listed by request id',
    );

    // Signing out: back to the sign-in form, the cookie gone from the browser and dead on the server.
    const [session] = await page.context().cookies(admin);
    assert.equal(session?.name, 'gatehouse_admin');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.ok(session.expires > Date.now() / 1000 + 7.9 * 3600, 'the cookie lasts 8 hours');
    await page.click('form[action="/logout"] button');
    await page.waitForSelector('input[name=token]');
    assert.deepEqual(await page.context().cookies(admin), []);
    const replayed = await request(`${admin}/api/v1/stats`, {
      headers: { cookie: `${session.name}=${session.value}` },
    });
    await replayed.body.dump();
    assert.equal(replayed.statusCode, 401);
  } finally {
    traffic = false;
    await load;
    await browser.close();
    await gh.close();
    await Promise.all([app.close(), spare.close()]);
  }
});

test("dashboard: the Caches panel shows a cache's figures after a miss and a hit", async (t) => {
  if (!needCommand(t, 'chromium', 'the dashboard test drives a headless browser')) return;
  const app = await origin((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
    res.end('x'.repeat(2048));
  });
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
middlewares:
  edge: { cache: { maxSize: 1mb, maxObjectSize: 64kb, cacheStatusName: edge } }
routes: [{ name: site, match: { pathPrefix: / }, middlewares: [edge], upstream: app }]
upstreams: { app: { targets: [{ url: ${app.url} }] } }
`).catch(async (err) => {
    await app.close();
    throw err;
  });
  const admin = gh.gh.admin?.url as string;
  const chromiumPath = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  const browser = await chromium
    .launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] })
    .catch(async (err) => {
      await gh.close();
      await app.close();
      throw err;
    });
  try {
    const miss = await send(`${gh.url()}/page`);
    assert.equal(miss.headers['cache-status'], 'edge; fwd=miss; stored');
    const hit = await send(`${gh.url()}/page`);
    assert.match(String(hit.headers['cache-status']), /^edge; hit; ttl=\d+$/);

    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(admin);
    await page.fill('input[name=token]', TOKEN);
    await page.click('button[type=submit]');
    const row = 'tr[data-cache="edge"]';
    await page.waitForSelector(row);
    assert.equal(await page.isVisible('#caches-panel'), true);
    const field = async (f: string) => (await page.textContent(`${row} [data-field="${f}"]`))?.trim();
    assert.equal(await field('hits'), '1');
    assert.equal(await field('misses'), '1');
    assert.equal(await field('hitRatio'), '50.0%');
    assert.equal(await field('stale'), '0');
    assert.equal(await field('revalidated'), '0');
    assert.equal(await field('coalesced'), '0');
    assert.equal(await field('objects'), '1');
    assert.equal(await field('evictions'), '0');
    assert.match(String(await field('bytes')), /^\d+(\.\d)? KiB \/ 1\.0 MiB$/);

    // The page follows the figures: two more hits, 3 of 4 lookups answered from the store.
    await send(`${gh.url()}/page`);
    await send(`${gh.url()}/page`);
    await page.waitForFunction(
      (sel) => document.querySelector(`${sel} [data-field="hits"]`)?.textContent === '3',
      row,
      { timeout: 5000 },
    );
    assert.equal(await field('hitRatio'), '75.0%');
    // And they are the admin API's figures.
    const api = await request(`${admin}/api/v1/cache`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const [figures] = (await api.body.json()) as { bytes: number; hits: number }[];
    assert.equal(figures.hits, 3);
    assert.equal(
      await page.getAttribute(`${row} [data-field="bytes"]`, 'title'),
      `${figures.bytes} of 1048576 bytes`,
    );
  } finally {
    await browser.close();
    await gh.close();
    await app.close();
  }
});

test('dashboard: the Splits and Mirrors panels show the figures, and a difference with both request ids, as text', async (t) => {
  if (!needCommand(t, 'chromium', 'the dashboard test drives a headless browser')) return;
  const XSS = '<img src=x onerror=alert(1)>';
  const stable = await origin();
  const canary = await origin();
  const answer = (candidate: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    // The candidate disagrees on the price, and answers /api/xss with markup for a JSON key.
    const body =
      path === '/api/xss' ? (candidate ? { [XSS]: 1 } : {}) : { item: path, price: candidate ? 21 : 20 };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const primary = await origin(answer(false));
  const candidate = await origin(answer(true));
  const origins = [stable, canary, primary, candidate];
  const closeOrigins = () => Promise.all(origins.map((o) => o.close()));
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
routes:
  - name: shop
    match: { pathPrefix: /shop }
    split: [{ upstream: stable, weight: 3 }, { upstream: canary, weight: 1 }]
  - name: api
    match: { pathPrefix: /api }
    upstream: primary
    mirror: { upstream: candidate, compare: {} }
upstreams:
  stable: { targets: [{ url: ${stable.url} }] }
  canary: { targets: [{ url: ${canary.url} }] }
  primary: { targets: [{ url: ${primary.url} }] }
  candidate: { targets: [{ url: ${candidate.url} }] }
`).catch(async (err) => {
    await closeOrigins();
    throw err;
  });
  const admin = gh.gh.admin?.url as string;
  const chromiumPath = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  const browser = await chromium
    .launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] })
    .catch(async (err) => {
      await gh.close();
      await closeOrigins();
      throw err;
    });
  try {
    // 8 requests over a 3:1 split: exactly 6 and 2 (smooth weighted round robin).
    for (let i = 0; i < 8; i++) assert.equal((await send(`${gh.url()}/shop/p${i}`)).status, 200);
    // 3 mirrored requests whose candidate answers differ; their request ids are the client's.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await send(`${gh.url()}/api/items/${i}`);
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).price, 20, 'the client gets the primary');
      ids.push(String(r.headers['x-request-id']));
    }
    // Markup in the request target: no space can be in one (a request line is split on them), so
    // the spaces are %20; the angle brackets are sent as they are, in the query.
    const target = '/api/xss?q=<img%20src=x%20onerror=alert(1)>';
    const xss = await raw(gh.url(), `GET ${target} HTTP/1.1\r\nhost: shop.test\r\nconnection: close\r\n\r\n`);
    assert.match(xss, /^HTTP\/1\.1 200 /);
    const xssId = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(xss)?.[1];
    assert.ok(xssId, 'the answer carries a request id');

    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(admin);
    await page.fill('input[name=token]', TOKEN);
    await page.click('button[type=submit]');

    // Splits: each side's weight and requests, with their shares.
    await page.waitForSelector('tr[data-split="shop"][data-side="canary"]');
    assert.equal(await page.isVisible('#splits-panel'), true);
    assert.deepEqual(
      await page.$$eval('tr[data-split="shop"]', (rows) => rows.map((r) => r.getAttribute('data-side'))),
      ['stable', 'canary'],
    );
    const side = async (s: string, f: string) =>
      (await page.textContent(`tr[data-split="shop"][data-side="${s}"] [data-field="${f}"]`))?.trim();
    assert.equal(await side('stable', 'weight'), '3');
    assert.equal(await side('stable', 'weightShare'), '75.0%');
    assert.equal(await side('stable', 'requests'), '6');
    assert.equal(await side('stable', 'requestShare'), '75.0%');
    assert.equal(await side('canary', 'weight'), '1');
    assert.equal(await side('canary', 'weightShare'), '25.0%');
    assert.equal(await side('canary', 'requests'), '2');
    assert.equal(await side('canary', 'requestShare'), '25.0%');
    assert.equal(await page.$$eval('tr[data-split="api"]', (rows) => rows.length), 0, 'no split, no row');

    // Mirrors: the route's figures once all four comparisons are in.
    const row = 'tr[data-mirror="api"]';
    await page.waitForFunction(
      (sel) => document.querySelector(`${sel} [data-field="compared"]`)?.textContent === '4',
      row,
      { timeout: 10_000 },
    );
    assert.equal(await page.isVisible('#mirrors-panel'), true);
    const figure = async (f: string) => (await page.textContent(`${row} [data-field="${f}"]`))?.trim();
    assert.equal(await figure('sent'), '4');
    assert.equal(await figure('differed'), '4');
    assert.equal(await figure('matched'), '0');
    assert.equal(await figure('failed'), '0');
    assert.equal(await figure('dropped'), '0');
    assert.equal(await figure('inflight'), '0');
    assert.equal(await page.textContent(`${row} [data-kind="body"]`), '4');
    assert.equal(await page.textContent(`${row} [data-kind="status"]`), '0');

    // The latest differences, newest first, each with both request ids.
    await page.waitForFunction(() => document.querySelectorAll('#diffs tr[data-diff]').length === 4);
    const diffs = await page.$$eval('#diffs tr[data-diff]', (rows) =>
      rows.map((r) => ({
        path: r.querySelector('[data-field="path"]')?.textContent,
        pathElements: r.querySelector('[data-field="path"]')?.children.length,
        kind: r.querySelector('[data-field="kind"]')?.textContent,
        primary: r.querySelector('[data-primary-id]')?.textContent,
        mirror: r.querySelector('[data-mirror-id]')?.textContent,
        detail: r.querySelector('[data-field="detail"]')?.textContent,
        detailElements: r.querySelector('[data-field="detail"]')?.children.length,
      })),
    );
    assert.deepEqual(diffs[3], {
      path: 'GET /api/items/0',
      pathElements: 0,
      kind: 'body',
      primary: ids[0],
      mirror: `${ids[0]}-m`,
      detail: 'JSON differs at $.price',
      detailElements: 0,
    });
    assert.deepEqual(
      diffs.slice(1, 3).map((d) => d.primary),
      [ids[2], ids[1]],
    );
    // Markup from the request and from the candidate's answer shows as text, and runs nothing.
    assert.deepEqual(diffs[0], {
      path: `GET ${target}`,
      pathElements: 0,
      kind: 'body',
      primary: xssId,
      mirror: `${xssId}-m`,
      detail: `JSON differs at $[${JSON.stringify(XSS)}]`,
      detailElements: 0,
    });
    assert.equal(await page.$$eval('#mirrors-panel img', (els) => els.length), 0);
    assert.deepEqual(dialogs, [], 'no script ran');

    // They are the admin API's differences.
    const api = await request(`${admin}/api/v1/mirror/diffs?route=api&limit=1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const snapshot = (await api.body.json()) as { diffs: { path: string; mirror: { requestId: string } }[] };
    assert.equal(snapshot.diffs.length, 1);
    assert.equal(snapshot.diffs[0].path, `GET ${target}`);
    assert.equal(snapshot.diffs[0].mirror.requestId, `${xssId}-m`);
  } finally {
    await browser.close();
    await gh.close();
    await closeOrigins();
  }
});
