// The admin listener: token checks, /metrics after real traffic, the JSON API, draining a target,
// dashboard sessions (sign in, sign out, expiry, forged cookies).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { request } from 'undici';
import { startAdmin } from '../../src/admin/server.ts';
import { Stats } from '../../src/observe/stats.ts';
import { start, until } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { freePort } from '../helpers/net.ts';
import { origin } from '../helpers/origin.ts';

const TOKEN = 'test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

async function adminGet(base: string, path: string, headers: Record<string, string> = auth) {
  const res = await request(`${base}${path}`, { headers });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** Signs in as the dashboard's form does; returns the Set-Cookie header and the cookie to send back. */
async function login(base: string): Promise<{ setCookie: string; cookie: string }> {
  const res = await request(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${TOKEN}`,
  });
  await res.body.dump();
  assert.equal(res.statusCode, 303);
  const setCookie = String(res.headers['set-cookie']);
  return { setCookie, cookie: setCookie.split(';')[0] };
}

const statusWith = async (base: string, cookie: string) =>
  (await adminGet(base, '/api/v1/status', { cookie })).status;

const HOUR = 3600_000;

/** Prometheus text → { 'name{labels}': value }. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

test('admin: every request needs the token; /metrics and the API report the traffic', async () => {
  const good = await origin();
  const failing = await origin((_req, res) => res.writeHead(502).end('bad'));
  const deadPort = await freePort();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
routes:
  - { name: api, match: { pathPrefix: /api }, upstream: api }
  - { name: broken, match: { pathPrefix: /broken }, upstream: broken }
upstreams:
  api:
    targets: [{ url: ${good.url} }, { url: "http://127.0.0.1:${deadPort}" }]
    healthCheck: { interval: 50ms, unhealthyAfter: 1 }
  broken:
    targets: [{ url: ${failing.url} }]
    retry: { attempts: 1 }
`);
  const admin = gh.gh.admin?.url as string;
  try {
    // No token, a wrong token, a token in the wrong place: 401.
    assert.equal((await adminGet(admin, '/metrics', {})).status, 401);
    assert.equal((await adminGet(admin, '/api/v1/status', { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await adminGet(admin, `/api/v1/status?token=${TOKEN}`, {})).status, 401);
    const unauth = await adminGet(admin, '/api/v1/routes', {});
    assert.equal(unauth.headers['www-authenticate'], 'Bearer realm="gatehouse admin"');

    await until(() => gh.messages.some((m) => m.includes(`:${deadPort} is DOWN`)), 3000, 'dead target down');
    for (let i = 0; i < 6; i++)
      assert.equal((await send(`${gh.url()}/api/item/${i}?secret=${i}`)).status, 200);
    await send(`${gh.url()}/api/x`, { method: 'POST', body: 'hello' });
    for (let i = 0; i < 3; i++) assert.equal((await send(`${gh.url()}/broken/${i}`)).status, 502);
    assert.equal((await send(`${gh.url()}/nowhere`)).status, 404);

    const m = await adminGet(admin, '/metrics');
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /text\/plain/);
    const s = samples(m.text);
    const req = (route: string, upstream: string, target: string, method: string, cls: string) =>
      s.get(
        `gatehouse_requests_total{route="${route}",upstream="${upstream}",target="${target}",method="${method}",status_class="${cls}"}`,
      );
    assert.equal(req('api', 'api', good.url, 'GET', '2xx'), 6);
    assert.equal(req('api', 'api', good.url, 'POST', '2xx'), 1);
    assert.equal(req('broken', 'broken', failing.url, 'GET', '5xx'), 3);
    assert.equal(s.get('gatehouse_request_duration_seconds_count{route="api"}'), 7);
    assert.equal(s.get('gatehouse_request_duration_seconds_bucket{route="api",le="+Inf"}'), 7);
    assert.equal(s.get('gatehouse_request_bytes_total{route="api"}'), 5);
    assert.ok((s.get('gatehouse_response_bytes_total{route="api"}') as number) > 0);
    assert.equal(
      s.get(
        `gatehouse_upstream_target_state{upstream="api",target="http://127.0.0.1:${deadPort}",state="unhealthy"}`,
      ),
      1,
    );
    assert.equal(
      s.get(`gatehouse_upstream_target_state{upstream="api",target="${good.url}",state="healthy"}`),
      1,
    );
    assert.equal(s.get('gatehouse_requests_in_flight{listener="web"}'), 0);
    assert.ok((s.get('gatehouse_connections_active{listener="web"}') as number) >= 0);
    assert.ok(s.has('process_cpu_user_seconds_total'), 'process metrics');
    // Bounded cardinality: no raw path, query, client address or request id in any label.
    // (Metric names may say "client", as gatehouse_ban_tracked_clients does; no label holds one.)
    assert.ok(
      !/item\/|secret|127\.0\.0\.1",method|request_id|client_?ip|\{client/i.test([...s.keys()].join('\n')),
    );

    // The JSON API.
    const status = JSON.parse((await adminGet(admin, '/api/v1/status')).text);
    assert.equal(status.version, '0.1.0');
    assert.ok(status.uptimeSeconds >= 0);
    const config = JSON.parse((await adminGet(admin, '/api/v1/config')).text);
    assert.equal(config.admin.token, '[redacted]');
    assert.equal(config.upstreams.api.targets[0].url, good.url);
    const ups = JSON.parse((await adminGet(admin, '/api/v1/upstreams')).text);
    const api = ups.find((u: { name: string }) => u.name === 'api');
    assert.deepEqual(
      api.targets.map((t: { state: string }) => t.state),
      ['healthy', 'unhealthy'],
    );
    const errors = JSON.parse((await adminGet(admin, '/api/v1/errors')).text);
    assert.equal(errors[0].reason, 'route_not_found');
    assert.equal(errors[1].route, 'broken');
    assert.match(errors[1].requestId, /^[0-9a-f-]{36}$/);
    // Live figures cover whole seconds: wait for the current one to end.
    await new Promise((r) => setTimeout(r, 1100));
    const routes = JSON.parse((await adminGet(admin, '/api/v1/routes')).text);
    const broken = routes.find((r: { name: string }) => r.name === 'broken');
    assert.equal(broken.requests, 3);
    assert.equal(broken.lastMinute.requests, 3);
    assert.equal(broken.lastMinute.errorRate, 1);
    assert.ok(broken.lastMinute.p50 > 0 && broken.lastMinute.p99 >= broken.lastMinute.p50);
    assert.equal(broken.series.length, 60);

    // Draining through the API takes the bearer token; then no new request goes there.
    const drainUrl = `${admin}/api/v1/upstreams/api/drain?target=${encodeURIComponent(good.url)}`;
    const drained = await request(drainUrl, { method: 'POST', headers: auth });
    assert.equal(drained.statusCode, 200);
    await drained.body.dump();
    assert.ok(gh.messages.some((msg) => msg.includes(`${good.url} is draining`)));
    assert.equal((await send(`${gh.url()}/api/after-drain`)).status, 503);
    const undrain = await request(`${drainUrl}&drain=false`, { method: 'POST', headers: auth });
    await undrain.body.dump();
    assert.equal((await send(`${gh.url()}/api/after-undrain`)).status, 200);
  } finally {
    await gh.close();
    await Promise.all([good.close(), failing.close()]);
  }
});

test('the dashboard asks for the token; signing in sets a session cookie that is not the token', async () => {
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
routes: []
`);
  const admin = gh.gh.admin?.url as string;
  try {
    const page = await adminGet(admin, '/', { accept: 'text/html' });
    assert.equal(page.status, 401);
    assert.match(page.text, /<form method="post" action="\/login">/);
    const wrong = await request(`${admin}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=wrong',
    });
    assert.equal(wrong.statusCode, 401);
    await wrong.body.dump();
    const ok = await request(`${admin}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${TOKEN}`,
    });
    await ok.body.dump();
    assert.equal(ok.statusCode, 303);
    const cookie = String(ok.headers['set-cookie']);
    assert.match(cookie, /HttpOnly; SameSite=Strict/);
    assert.ok(!cookie.includes(TOKEN), 'the cookie does not carry the token');
    const session = cookie.split(';')[0];
    const dash = await adminGet(admin, '/', { cookie: session });
    assert.equal(dash.status, 200);
    assert.match(dash.text, /<title>Gatehouse<\/title>/);
    assert.equal((await adminGet(admin, '/api/v1/stats', { cookie: session })).status, 200);
    // Changes need the header, not the cookie.
    const drain = await request(`${admin}/api/v1/upstreams/u/drain?target=x`, {
      method: 'POST',
      headers: { cookie: session },
    });
    assert.equal(drain.statusCode, 403);
    await drain.body.dump();
  } finally {
    await gh.close();
  }
});

test('signing out ends that session: the cookie is cleared, and refused if sent again', async () => {
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
routes: []
`);
  const admin = gh.gh.admin?.url as string;
  try {
    const first = await login(admin);
    const second = await login(admin);
    assert.notEqual(first.cookie, second.cookie, 'each sign-in is its own session');
    assert.match(first.setCookie, /; Max-Age=28800; HttpOnly; SameSite=Strict; Path=\/$/);
    assert.equal(await statusWith(admin, first.cookie), 200);

    const out = await request(`${admin}/logout`, { method: 'POST', headers: { cookie: first.cookie } });
    await out.body.dump();
    assert.equal(out.statusCode, 303);
    assert.equal(out.headers.location, '/');
    assert.equal(
      String(out.headers['set-cookie']),
      'gatehouse_admin=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/',
    );
    // A copy of the cookie kept from before: refused, and a browser gets the sign-in form.
    assert.equal(await statusWith(admin, first.cookie), 401);
    const page = await adminGet(admin, '/', { cookie: first.cookie, accept: 'text/html' });
    assert.equal(page.status, 401);
    assert.match(page.text, /<form method="post" action="\/login">/);
    // The other session is untouched, and its dashboard has the button that signs out.
    const dash = await adminGet(admin, '/', { cookie: second.cookie, accept: 'text/html' });
    assert.equal(dash.status, 200);
    assert.match(
      dash.text,
      /<form method="post" action="\/logout"[^>]*><button type="submit"[^>]*>Sign out</,
    );
    // Signing out with no session, or one already ended, only clears the cookie.
    for (const headers of [{}, { cookie: first.cookie }]) {
      const again = await request(`${admin}/logout`, { method: 'POST', headers });
      await again.body.dump();
      assert.equal(again.statusCode, 303);
      assert.match(String(again.headers['set-cookie']), /^gatehouse_admin=; Max-Age=0;/);
    }
    assert.equal(await statusWith(admin, second.cookie), 200);
  } finally {
    await gh.close();
  }
});

test('a session expires: after 8 hours by default, or the lifetime startAdmin is given', async () => {
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: []
`);
  let clock = Date.now();
  const ctx = {
    stats: new Stats(),
    tracer: null,
    plan: () => gh.gh.plan,
    reloads: () => ({ count: 0, last: null }),
  };
  const config = { address: '127.0.0.1:0', token: TOKEN };
  const byDefault = await startAdmin(config, ctx, { now: () => clock });
  const short = await startAdmin(config, ctx, { now: () => clock, sessionLifetime: 90_000 });
  try {
    const s = await login(byDefault.url);
    assert.match(s.setCookie, /; Max-Age=28800;/);
    clock += 8 * HOUR - 1;
    assert.equal(await statusWith(byDefault.url, s.cookie), 200, 'a moment before 8 hours');
    clock += 1;
    assert.equal(await statusWith(byDefault.url, s.cookie), 401, 'at 8 hours');
    const page = await adminGet(byDefault.url, '/', { cookie: s.cookie, accept: 'text/html' });
    assert.equal(page.status, 401);
    assert.match(page.text, /action="\/login"/);
    // Signing in again starts a new session.
    const again = await login(byDefault.url);
    assert.equal(await statusWith(byDefault.url, again.cookie), 200);

    const brief = await login(short.url);
    assert.match(brief.setCookie, /; Max-Age=90;/);
    clock += 89_999;
    assert.equal(await statusWith(short.url, brief.cookie), 200);
    clock += 1;
    assert.equal(await statusWith(short.url, brief.cookie), 401);
    // The bearer token does not expire.
    assert.equal((await adminGet(short.url, '/api/v1/status')).status, 200);
  } finally {
    await Promise.all([byDefault.close(), short.close()]);
    await gh.close();
  }
});

test('a forged or altered session cookie is refused', async () => {
  const yaml = `
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
routes: []
`;
  const gh = await start(yaml);
  const other = await start(yaml);
  const admin = gh.gh.admin?.url as string;
  const otherAdmin = other.gh.admin?.url as string;
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  try {
    const { cookie } = await login(admin);
    assert.equal(await statusWith(admin, cookie), 200);
    const value = cookie.slice('gatehouse_admin='.length);
    // Session id (16 random bytes), expiry in ms, HMAC-SHA256 of both: all base64url or digits.
    const m = /^([\w-]{22})\.(\d+)\.([\w-]{43})$/.exec(value);
    assert.ok(m, `id.expiry.mac: ${value}`);
    const [, id, exp, mac] = m;
    assert.ok(Math.abs(Number(exp) - (Date.now() + 8 * HOUR)) < 60_000, 'expires 8 hours from now');

    const refused = async (v: string, what: string) =>
      assert.equal(await statusWith(admin, `gatehouse_admin=${v}`), 401, what);
    await refused(`${id}.${Number(exp) + 24 * HOUR}.${mac}`, 'expiry pushed back');
    await refused(`${flip(id, 5)}.${exp}.${mac}`, 'another session id');
    await refused(`${id}.${exp}.${flip(mac, 20)}`, 'MAC altered');
    await refused(`${id}.${exp}.`, 'MAC missing');
    await refused(`${id}.${exp}`, 'no MAC part');
    await refused(`${id}.${exp}.${mac}.${mac}`, 'extra part');
    await refused('', 'empty');
    // What the cookie used to be, an HMAC of the token, is no way in.
    await refused(createHmac('sha256', TOKEN).update('gatehouse admin session').digest('hex'), 'token HMAC');
    // Another Gatehouse with the same token signs with its own key.
    const elsewhere = await login(otherAdmin);
    assert.equal(await statusWith(otherAdmin, elsewhere.cookie), 200);
    assert.equal(await statusWith(admin, elsewhere.cookie), 401, 'signed by another process');
    // The genuine cookie still works after all that.
    assert.equal(await statusWith(admin, cookie), 200);
  } finally {
    await Promise.all([gh.close(), other.close()]);
  }
});
