import assert from 'node:assert/strict';
import { test } from 'node:test';
import { restartOnlyKeys, schemaKeys, splitReload } from '../../src/config/reloadable.ts';
import type { Config } from '../../src/config/schema.ts';
import { validateText } from '../../src/config/validate.ts';
import { start } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';

const configOf = (yaml: string): Config => {
  const v = validateText(yaml, 'c.yaml', {});
  assert.deepEqual(v.errors, []);
  return v.config as Config;
};

const before = configOf(`listeners: [{ name: web, address: "127.0.0.1:8080" }]
routes: [{ name: a, match: { pathPrefix: /a }, upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:3000" }] } }
forwarding: { via: edge-a }
tracing: { endpoint: "http://127.0.0.1:4318/v1/traces" }
`);

const after = configOf(`listeners: [{ name: web, address: "127.0.0.1:9090" }]
routes: [{ name: b, match: { pathPrefix: /b }, upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:3001" }] } }
limits: { maxRequestBody: 1mb }
forwarding: { via: edge-b, forwarded: true, trustedProxies: [10.0.0.0/8] }
admin: { token: 0123456789abcdef }
shutdownGracePeriod: 3s
`);

test('the reload class of every key comes from the schema; every top-level key declares one', () => {
  const keys = schemaKeys();
  for (const k of keys.filter((k) => !k.path.includes('.')))
    assert.ok(k.declared, `${k.path} says whether it reloads hot or needs a restart`);
  assert.deepEqual(restartOnlyKeys(), [
    'admin',
    'listeners',
    'limits',
    'forwarding.via',
    'accessLog',
    'tracing',
    'redis',
  ]);
  const classOf = (path: string) => keys.find((k) => k.path === path)?.reload;
  assert.equal(classOf('forwarding.via'), 'restart');
  assert.equal(classOf('forwarding.trustedProxies'), 'hot');
  assert.equal(classOf('listeners[].tls.minVersion'), 'restart', 'inherited');
  assert.equal(classOf('upstreams.<name>.timeouts.connect'), 'hot');
});

test('splitReload keeps every restart-only key as it was and names the ones that changed', () => {
  const frozen = structuredClone(after);
  const { config, restartKeys } = splitReload(before, after);
  assert.deepEqual(restartKeys, ['admin', 'listeners', 'limits', 'forwarding.via', 'tracing']);
  // Restart-only: the running values.
  assert.deepEqual(config.listeners, before.listeners);
  assert.deepEqual(config.limits, before.limits);
  assert.equal(config.forwarding.via, 'edge-a');
  assert.deepEqual(config.tracing, before.tracing);
  assert.equal('admin' in config, false, 'no admin block before: none now');
  // Hot: the new values, beside the kept ones in the same block.
  assert.equal(config.forwarding.forwarded, true);
  assert.deepEqual(config.forwarding.trustedProxies, ['10.0.0.0/8']);
  assert.deepEqual(config.routes, after.routes);
  assert.deepEqual(config.upstreams, after.upstreams);
  assert.equal(config.shutdownGracePeriod, 3000);
  assert.deepEqual(after, frozen, 'the new config itself is left as it was');
  // Nothing restart-only changed: the new config as it is.
  const same = splitReload(before, { ...before, routes: after.routes });
  assert.deepEqual(same.restartKeys, []);
  assert.deepEqual(same.config.routes, after.routes);
});

test('a reload applies hot keys and keeps restart-only ones (forwarding.via, limits)', async () => {
  const o = await origin((req, res) => res.end(String(req.headers.via)));
  const yaml = (
    via: string,
    body: string,
    prefix: string,
  ) => `listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: r, match: { pathPrefix: ${prefix} }, upstream: u }]
upstreams: { u: { targets: [{ url: "${o.url}" }] } }
limits: { maxRequestBody: ${body} }
forwarding: { via: ${via} }
accessLog: { enabled: false }
`;
  const gh = await start(yaml('edge-a', '1kb', '/a'));
  try {
    assert.equal((await send(`${gh.url()}/a`)).body, '1.1 edge-a');
    gh.gh.reload(configOf(yaml('edge-b', '1mb', '/b')));
    assert.ok(
      gh.messages.includes(
        'reload: limits, forwarding.via changed; they apply after a restart (kept as they were)',
      ),
      gh.messages.join('\n'),
    );
    assert.equal((await send(`${gh.url()}/a`)).status, 404, 'routes are hot');
    assert.equal((await send(`${gh.url()}/b`)).body, '1.1 edge-a', 'via is kept');
    assert.equal(gh.gh.plan.config.limits.maxRequestBody, 1024, 'limits are kept whole');
  } finally {
    await gh.close();
    await o.close();
  }
});
