// Several listeners at once, IPv4 and IPv6, with routes bound to some of them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { start } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';

test('IPv4 and IPv6 listeners serve side by side; a route bound to one listener is only there', async () => {
  const up = await origin();
  const v6up = await origin(undefined, '::1');
  const gh = await start(`
listeners:
  - { name: v4, address: "127.0.0.1:0" }
  - { name: v6, address: "[::1]:0" }
routes:
  - { name: v6only, listeners: [v6], match: { pathPrefix: /v6 }, upstream: ipv6 }
  - { name: all, match: { pathPrefix: / }, upstream: u }
upstreams:
  u: { targets: [{ url: "${up.url}" }] }
  ipv6: { targets: [{ url: "${v6up.url}" }] }
`);
  try {
    assert.match(gh.url('v6'), /^http:\/\/\[::1\]:\d+$/);
    const a = JSON.parse((await send(`${gh.url('v4')}/v6/x`)).body);
    assert.equal(a.port, up.port, 'on the IPv4 listener /v6 falls through to the catch-all');
    const b = JSON.parse((await send(`${gh.url('v6')}/v6/x`)).body);
    assert.equal(b.port, v6up.port, 'on the IPv6 listener it reaches the IPv6 upstream');
    assert.equal(b.headers['x-forwarded-for'], '::1');
    const logged = gh.log.entries().map((e) => [e.listener, e.clientIp, e.route]);
    assert.deepEqual(logged, [
      ['v4', '127.0.0.1', 'all'],
      ['v6', '::1', 'v6only'],
    ]);
  } finally {
    await gh.close();
    await up.close();
    await v6up.close();
  }
});
