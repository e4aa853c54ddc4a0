// The ban list through the admin API: list, ban by hand, lift; a banned address is refused at once.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { start } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';

const TOKEN = '0123456789abcdef0123';

test('admin API: POST /api/v1/bans bans an address, GET lists it, DELETE lifts it', async () => {
  const up = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: ${TOKEN} }
limits: { ban: { after: 5, window: 1m, duration: 1m } }
routes: [{ name: r, match: { pathPrefix: / }, upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`);
  const admin = (gh.gh.admin as { url: string }).url;
  const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  try {
    assert.equal((await send(`${gh.url()}/`)).status, 200);
    assert.deepEqual(JSON.parse((await send(`${admin}/api/v1/bans`, { headers: auth })).body), []);
    const noToken = await send(`${admin}/api/v1/bans`, { method: 'POST', body: '{"address":"127.0.0.1"}' });
    assert.equal(noToken.status, 401);
    const bad = await send(`${admin}/api/v1/bans`, {
      method: 'POST',
      headers: auth,
      body: '{"address":"nope"}',
    });
    assert.equal(bad.status, 400);
    const ban = await send(`${admin}/api/v1/bans`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ address: '127.0.0.1', seconds: 60 }),
    });
    assert.equal(ban.status, 200, ban.body);
    const list = JSON.parse((await send(`${admin}/api/v1/bans`, { headers: auth })).body) as {
      ip: string;
    }[];
    assert.deepEqual(
      list.map((b) => b.ip),
      ['127.0.0.1'],
    );
    // Refused: a new connection at once (no HTTP answer), one kept alive from before with 403 banned.
    const refused = await send(`${gh.url()}/`).catch(() => null);
    assert.ok(refused === null || refused.status === 403, `got ${refused?.status}`);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const sock = connect(Number(new URL(gh.url()).port), '127.0.0.1');
        sock.on('connect', () => sock.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
        sock.on('data', (d) => resolve(d.toString()));
        sock.on('error', reject);
        sock.on('close', () => reject(new Error('closed without an answer')));
      }),
    );
    const lifted = await send(`${admin}/api/v1/bans/127.0.0.1`, { method: 'DELETE', headers: auth });
    assert.equal(lifted.status, 200, lifted.body);
    assert.equal((await send(`${gh.url()}/`)).status, 200);
    assert.equal(
      (await send(`${admin}/api/v1/bans/127.0.0.1`, { method: 'DELETE', headers: auth })).status,
      404,
    );
    const metrics = (await send(`${admin}/metrics`, { headers: auth })).body;
    assert.match(metrics, /gatehouse_connections_refused_total\{listener="web",reason="banned"\} [1-9]/);
  } finally {
    await gh.close();
    await up.close();
  }
});
