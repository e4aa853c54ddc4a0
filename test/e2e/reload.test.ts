import assert from 'node:assert/strict';
import { test } from 'node:test';
import { start, testConfig, until } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';

const config = (url: string) => `
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams:
  u: { targets: [{ url: "${url}" }] }
`;

test('a Plan swap leaves in-flight requests on the old Plan, new ones use the new Plan, the old one closes after', async () => {
  let release: () => void = () => {};
  const a = await origin((req, res) => {
    if (req.url === '/slow') release = () => res.end('old-slow');
    else res.end('old');
  });
  const b = await origin((_req, res) => res.end('new'));
  const gh = await start(config(a.url));
  try {
    const slow = send(`${gh.url()}/slow`);
    await until(() => a.seen.length === 1, 3000, 'slow request to arrive');
    const old = gh.gh.plan;
    gh.gh.reload(testConfig(config(b.url)));
    assert.notEqual(gh.gh.plan, old);
    assert.equal((await send(`${gh.url()}/x`)).body, 'new');
    assert.equal(old.usage.retired, true);
    assert.equal(old.usage.active, 1, 'the old Plan still serves the in-flight request');
    release();
    assert.equal((await slow).body, 'old-slow');
    await until(() => old.usage.active === 0, 3000, 'old plan to drain');
    assert.equal(
      gh.messages.filter((m) => m.startsWith('reload:')).length,
      0,
      'only routes and upstreams changed',
    );
    gh.gh.reload(testConfig(`${config(b.url)}limits: { maxRequestBody: 1kb }\n`));
    assert.ok(gh.messages.includes('reload: limits changed; they apply after a restart (kept as they were)'));
  } finally {
    await gh.close();
    await a.close();
    await b.close();
  }
});
