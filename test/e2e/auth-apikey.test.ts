// apiKey end to end, on every transport (HTTP/1.1 plain and TLS, HTTP/2 over TLS, h2c, WebSocket
// upgrades plain and TLS): a key in the header or the query gets in, and then is gone from what
// the upstream gets and from the access log; a wrong key, a key in both places or twice, and a
// forged client-name header are refused or replaced.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { validateText } from '../../src/config/validate.ts';
import { ALL, echoed, header, skipWithoutOpenssl, UPGRADES, world, wsEcho } from '../auth/world.ts';
import { until } from '../helpers/gatehouse.ts';

const sha = (k: string) => createHash('sha256').update(k).digest('hex');
const CI = 'k-ci-Zm9vYmFy-123';
const PARTNER = 'k-partner-äöü-456';
const mw = (where: string) => `  keys:
    apiKey:
      ${where}
      headerName: x-api-client
      keys:
        - { name: ci, sha256: ${sha(CI)} }
        - { name: partner, sha256: "${sha(PARTNER).toUpperCase()}" }`;
const REFUSED = 'ApiKey realm="keys"';

test('a key in the header or the query gets in; the key never reaches the upstream or the log', {
  skip: skipWithoutOpenssl,
}, async () => {
  const w = await world(mw('header: X-Api-Key\n      query: api_key'), 'keys');
  try {
    for (const tr of ALL) {
      const viaHeader = await w.ask(tr, {
        target: '/v1/items?a=1',
        headers: [
          ['x-api-key', CI],
          ['x-api-client', 'root'],
        ],
      });
      assert.equal(viaHeader.status, 200, `${tr}: ${viaHeader.raw.slice(0, 300)}`);
      const seen = echoed(viaHeader);
      assert.equal(seen.url, '/v1/items?a=1');
      assert.equal(seen.headers['x-api-key'], undefined, tr);
      assert.equal(seen.headers['x-api-client'], 'ci', `${tr}: the key's name, not the forged one`);
      const viaQuery = await w.ask(tr, {
        target: `/v1/items?a=1&api_key=${encodeURIComponent(PARTNER)}&b=2&api_keys=kept`,
      });
      assert.equal(viaQuery.status, 200, tr);
      assert.equal(echoed(viaQuery).url, '/v1/items?a=1&b=2&api_keys=kept', tr);
      assert.equal(echoed(viaQuery).headers['x-api-client'], 'partner');
      // The only parameter, its name percent-encoded, the value with +: the query goes entirely.
      const alone = await w.ask(tr, {
        target: `/x?api%5Fkey=${encodeURIComponent(CI).replace(/-/g, '%2D')}`,
      });
      assert.equal(alone.status, 200, tr);
      assert.equal(echoed(alone).url, '/x', tr);
    }
    for (const s of w.up.seen) {
      const all = `${s.url} ${s.rawHeaders.join(' ')}`;
      assert.ok(
        !all.includes(CI) && !all.includes(encodeURIComponent(PARTNER)),
        `the upstream saw a key: ${all}`,
      );
      assert.equal(s.rawHeaders.filter((n) => n.toLowerCase() === 'x-api-client').length, 1);
    }
    await until(() => w.gh.log.lines.length === ALL.length * 3, 3000, 'log lines');
    const log = w.gh.log.lines.join('');
    assert.ok(!log.includes(CI) && !log.includes(encodeURIComponent(PARTNER)) && !log.includes('Zm9vYmFy'));
    // The key's name is the log line's user.
    const users = new Set(w.gh.log.entries().map((e) => e.user));
    assert.ok(users.has('ci') && users.has('partner'), `users logged: ${[...users].join(', ')}`);
  } finally {
    await w.close();
  }
});

test('refused with the same 401: no key, a wrong key, a key in both places, twice, or empty', {
  skip: skipWithoutOpenssl,
}, async () => {
  const w = await world(mw('header: x-api-key\n      query: api_key'), 'keys');
  try {
    const cases: [string, { target: string; headers?: [string, string][] }][] = [
      ['none', { target: '/' }],
      ['wrong header key', { target: '/', headers: [['x-api-key', 'k-ci-Zm9vYmFy-124']] }],
      ['wrong query key', { target: '/?api_key=nope' }],
      ['the digest as the key', { target: '/', headers: [['x-api-key', sha(CI)]] }],
      ['empty', { target: '/', headers: [['x-api-key', '']] }],
      ['empty parameter', { target: '/?api_key=' }],
      ['both places (both right)', { target: `/?api_key=${CI}`, headers: [['x-api-key', CI]] }],
      ['both places (one wrong)', { target: '/?api_key=wrong', headers: [['x-api-key', CI]] }],
      ['twice in the query', { target: `/?api_key=${CI}&api_key=${CI}` }],
      ['twice in the query, encoded name', { target: `/?api_key=${CI}&api%5fkey=x` }],
    ];
    for (const tr of ALL) {
      for (const [what, a] of cases) {
        const r = await w.ask(tr, a);
        assert.equal(r.status, 401, `${tr}: ${what}`);
        assert.equal(header(r, 'www-authenticate'), REFUSED, `${tr}: ${what}`);
      }
      if (tr === 'h2' || tr === 'h2c') continue; // node:http2's client joins repeated fields
      const twice = await w.ask(tr, {
        target: '/',
        headers: [
          ['x-api-key', CI],
          ['X-Api-Key', CI],
        ],
      });
      assert.equal(twice.status, 401, `${tr}: two header fields`);
    }
    assert.equal(w.up.seen.length, 0, 'nothing got through');
  } finally {
    await w.close();
  }
});

test('x-api-key is the default; a WebSocket upgrade needs the key too', {
  skip: skipWithoutOpenssl,
}, async () => {
  const w = await world(mw('# header: x-api-key by default'), 'keys');
  try {
    for (const tls of [false, true]) {
      const ca = tls ? w.L.ca : undefined;
      assert.equal(await wsEcho(`${w.wsUrl(tls)}/ws?api_key=${CI}`, {}, ca), 'status:401', 'no query here');
      assert.equal(await wsEcho(`${w.wsUrl(tls)}/ws`, { 'x-api-key': 'wrong' }, ca), 'status:401');
      assert.equal(
        await wsEcho(`${w.wsUrl(tls)}/ws`, { 'x-api-key': CI, 'x-api-client': 'root' }, ca),
        'echo:hello',
      );
    }
    assert.equal(w.upgrades.length, 2);
    for (const u of w.upgrades) {
      assert.equal(u['x-api-key'], undefined);
      assert.equal(u['x-api-client'], 'ci');
    }
    for (const tr of UPGRADES) assert.equal((await w.ask(tr, { target: '/ws' })).status, 401, tr);
    for (const tr of ALL) {
      const a = await w.ask(tr, { target: '/?api_key=x', headers: [['x-api-key', PARTNER]] });
      assert.equal(a.status, 200, tr);
      assert.equal(echoed(a).url, '/?api_key=x', 'a query parameter is not a key unless configured');
    }
  } finally {
    await w.close();
  }
});

test('validation: duplicate keys or names, the name header equal to the key header, reserved headers', () => {
  const check = (ak: string) =>
    validateText(
      `
listeners: [{ name: web, address: 127.0.0.1:0 }]
middlewares:
  keys: { apiKey: { ${ak} } }
routes: [{ name: r, middlewares: [keys], upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`,
      'gh.yaml',
    ).errors.map((e) => `${e.key}: ${e.reason}`);
  const k = (name: string, key: string) => `{ name: ${name}, sha256: ${sha(key)} }`;
  assert.deepEqual(check(`keys: [${k('a', '1')}, ${k('b', '2')}]`), []);
  assert.match(check(`keys: [${k('a', '1')}, ${k('a', '2')}]`).join(), /keys\.1\.name: already keys\.0/);
  assert.match(
    check(`keys: [${k('a', '1')}, ${k('b', '1')}]`).join(),
    /keys\.1\.sha256: the same key as keys\.0/,
  );
  assert.match(
    check(`headerName: X-API-KEY, keys: [${k('a', '1')}]`).join(),
    /headerName: the same header as the key/,
  );
  assert.match(check(`header: host, keys: [${k('a', '1')}]`).join(), /apiKey\.header: host/);
  assert.match(check(`keys: [{ name: a, sha256: nothex }]`).join(), /SHA-256/);
});
