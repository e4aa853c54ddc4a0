// Geo-routing end to end: the client address (after trusted-proxy resolution) looked up in a
// MaxMind database — MaxMind's own test file, and one the test writes and then replaces.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Running, start } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { writeMmdb } from '../helpers/mmdb.ts';
import { type Origin, origin } from '../helpers/origin.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/geoip/GeoLite2-Country-Test.mmdb');
let eu: Origin;
let world: Origin;
let gh: Running;

const named = (name: string) =>
  origin((req, res) => {
    res.writeHead(200, { 'x-side': name, 'content-type': 'text/plain' });
    res.end(`${req.headers['x-country'] ?? ''}/${req.headers['x-continent'] ?? ''}`);
  });

const config = (db: string) => `
listeners: [{ name: web, address: "127.0.0.1:0" }]
forwarding: { trustedProxies: [127.0.0.1] }
geoip: { database: ${db} }
middlewares:
  stamp: { headers: { request: { set: { x-country: "{geo.country}", x-continent: "{geo.continent}" } } } }
routes:
  - { name: dach, match: { pathPrefix: /, geo: { countries: [DE, AT, CH, GB] } }, middlewares: [stamp], upstream: eu }
  - { name: asia, match: { pathPrefix: /, geo: { continents: [AS] } }, middlewares: [stamp], upstream: eu }
  - { name: rest, match: { pathPrefix: / }, middlewares: [stamp], upstream: world }
upstreams:
  eu: { targets: [{ url: "${eu.url}" }] }
  world: { targets: [{ url: "${world.url}" }] }
`;

const from = (ip: string) => send(`${gh.url()}/`, { headers: { 'x-forwarded-for': ip } });

before(async () => {
  eu = await named('eu');
  world = await named('world');
  gh = await start(config(FIXTURE));
});
after(async () => {
  await gh.close();
  await eu.close();
  await world.close();
});

test("countries and continents from MaxMind's test database route and fill placeholders", async () => {
  const gb = await from('2.125.160.216');
  assert.equal(gb.headers['x-side'], 'eu');
  assert.equal(gb.body, 'GB/EU');
  const se = await from('89.160.20.112');
  assert.equal(se.headers['x-side'], 'world');
  assert.equal(se.body, 'SE/EU');
  const jp = await from('2001:218::1');
  assert.equal(jp.headers['x-side'], 'eu', 'the asia route (continent AS)');
  assert.equal(jp.body, 'JP/AS');
  const unknown = await from('10.1.2.3');
  assert.equal(unknown.headers['x-side'], 'world');
  assert.equal(unknown.body, '/');
});

test('an untrusted peer cannot claim a country with X-Forwarded-For', async () => {
  const g = await start(config(FIXTURE).replace('forwarding: { trustedProxies: [127.0.0.1] }', ''));
  try {
    const r = await send(`${g.url()}/`, { headers: { 'x-forwarded-for': '2.125.160.216' } });
    assert.equal(r.headers['x-side'], 'world');
    assert.equal(r.body, '/');
  } finally {
    await g.close();
  }
});

test('a database written by the test, replaced while running: lookups follow the new file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-geo-'));
  const db = join(dir, 'geo.mmdb');
  const rec = (iso: string, continent: string) => ({
    country: { iso_code: iso },
    continent: { code: continent },
  });
  writeFileSync(db, writeMmdb([{ cidr: '203.0.113.0/24', record: rec('DE', 'EU') }]));
  const g = await start(config(db));
  try {
    const ask = () => send(`${g.url()}/`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    assert.equal((await ask()).body, 'DE/EU');
    writeFileSync(`${db}.new`, writeMmdb([{ cidr: '203.0.113.0/24', record: rec('US', 'NA') }]));
    renameSync(`${db}.new`, db);
    let body = '';
    for (let i = 0; i < 150 && body !== 'US/NA'; i++) {
      body = (await ask()).body;
      if (body !== 'US/NA') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(body, 'US/NA');
  } finally {
    await g.close();
  }
});
