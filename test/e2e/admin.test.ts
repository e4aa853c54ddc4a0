// The admin listener: token checks, /metrics after real traffic, the JSON API, draining a target.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
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
    assert.ok(!/item\/|secret|127\.0\.0\.1",method|request_id|client/.test([...s.keys()].join('\n')));

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
