import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Running, start } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { type Origin, origin } from '../helpers/origin.ts';

let echo: Origin;
let gh: Running;

before(async () => {
  echo = await origin();
  gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
middlewares:
  limit: { rateLimit: { rate: 2, per: 1m, burst: 3 } }
  perKey: { rateLimit: { rate: 1, per: 1m, burst: 1, key: "header:x-api-key" } }
  hdrs:
    headers:
      request: { set: { x-env: prod }, add: { x-tag: two }, remove: [x-remove-me] }
      response: { set: { x-frame-options: DENY }, remove: [x-powered-by] }
  localOnly: { ipFilter: { allow: [127.0.0.0/8] } }
  noLocal: { ipFilter: { deny: [127.0.0.1] } }
routes:
  - { name: limited, match: { pathPrefix: /limited }, middlewares: [limit], upstream: echo }
  - { name: keyed, match: { pathPrefix: /keyed }, middlewares: [perKey], upstream: echo }
  - { name: headers, match: { pathPrefix: /headers }, middlewares: [hdrs], upstream: echo }
  - { name: allowed, match: { pathPrefix: /allowed }, middlewares: [localOnly, hdrs], upstream: echo }
  - { name: denied, match: { pathPrefix: /denied }, middlewares: [noLocal], upstream: echo }
upstreams:
  echo: { targets: [{ url: "${echo.url}" }] }
`);
});
after(async () => {
  await gh.close();
  await echo.close();
});

test('rateLimit: the burst passes, then 429 with Retry-After', async () => {
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await send(`${gh.url()}/limited`)).status);
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  const r = await send(`${gh.url()}/limited`);
  assert.equal(r.status, 429);
  assert.ok(Number(r.headers['retry-after']) >= 1);
  assert.equal(
    gh.log.entries().filter((e) => e.route === 'limited' && e.reason === 'rate_limited').length,
    3,
  );
});

test('rateLimit keyed by header: each key has its own bucket', async () => {
  assert.equal((await send(`${gh.url()}/keyed`, { headers: { 'x-api-key': 'a' } })).status, 200);
  assert.equal((await send(`${gh.url()}/keyed`, { headers: { 'x-api-key': 'a' } })).status, 429);
  assert.equal((await send(`${gh.url()}/keyed`, { headers: { 'x-api-key': 'b' } })).status, 200);
});

test('headers: request headers set, added and removed upstream; response headers set and removed', async () => {
  const r = await send(`${gh.url()}/headers`, {
    headers: { 'x-remove-me': '1', 'x-env': 'dev', 'x-tag': 'one' },
  });
  const seen = JSON.parse(r.body).headers;
  assert.equal(seen['x-remove-me'], undefined);
  assert.equal(seen['x-env'], 'prod');
  assert.equal(seen['x-tag'], 'one, two');
  assert.equal(r.headers['x-frame-options'], 'DENY');
});

test('ipFilter: allow lists and deny lists, 403 otherwise', async () => {
  assert.equal((await send(`${gh.url()}/allowed`)).status, 200);
  const d = await send(`${gh.url()}/denied`, { headers: { accept: 'application/json' } });
  assert.equal(d.status, 403);
  assert.equal(JSON.parse(d.body).reason, 'forbidden');
});
