// The middleware contract through the real pipeline: hooks in order, asynchronous onRequest,
// local answers, onUpstreamRequest and onResponse (in reverse order).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { CacheRegistry } from '../../src/cache/cache.ts';
import { compile, type ListenerPlan } from '../../src/config/compile.ts';
import { validateText } from '../../src/config/validate.ts';
import { Limits } from '../../src/limits/index.ts';
import type { Middleware } from '../../src/middleware/types.ts';
import { accessLine, MemorySink } from '../../src/observe/accessLog.ts';
import { NodeResponder } from '../../src/pipeline/responder.ts';
import { handleRequest } from '../../src/pipeline/run.ts';
import type { Runtime } from '../../src/pipeline/runtime.ts';
import { compileRoute } from '../../src/routing/table.ts';
import { MirrorRegistry } from '../../src/traffic/mirror.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';

test('async and sync hooks run in order; a hook may answer; response hooks run in reverse', async () => {
  const up = await origin();
  const plan = compile(
    validateText(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: r, upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`).config!,
  );
  const order: string[] = [];
  const auth: Middleware = {
    name: 'auth',
    async onRequest(ctx) {
      order.push('auth');
      await new Promise((r) => setTimeout(r, 5));
      return ctx.req.headers.authorization === 'Bearer ok'
        ? undefined
        : { status: 401, body: 'who are you?\n' };
    },
    onResponse(_ctx, head) {
      order.push('auth:response');
      head.headers['x-auth'] = 'checked';
    },
  };
  const tag: Middleware = {
    name: 'tag',
    onRequest() {
      order.push('tag');
      return undefined;
    },
    onUpstreamRequest(_ctx, req) {
      req.headers.push('x-tag', 'yes');
    },
    onResponse(_ctx, head) {
      order.push('tag:response');
      head.status = 203;
    },
  };
  const route = compileRoute(
    plan.config.routes[0],
    0,
    {
      upstream: plan.upstreams.get('u')!,
      split: null,
      local: null,
      mirror: null,
      errorPages: null,
      backend: 'u',
    },
    [auth, tag],
    1024,
  );
  const listener: ListenerPlan = { name: 'web', scheme: 'http', table: [route], trusted: null };
  const rt: Runtime = {
    plan,
    via: 'gh-contract',
    line: accessLine,
    stats: null,
    tracer: null,
    log: new MemorySink(),
    inflight: 0,
    onIdle: null,
    tunnels: new Set(),
    caches: new CacheRegistry(),
    mirrors: new MirrorRegistry(),
    limits: new Limits(plan.config.limits),
  };
  const slot = { plan: listener, stats: null };
  const server = createServer((req, res) =>
    handleRequest(rt, slot, req, new NodeResponder(res, false), null),
  ).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const denied = await send(`${url}/x`);
    assert.equal(denied.status, 401);
    assert.equal(denied.body, 'who are you?\n');
    assert.deepEqual(
      order,
      ['auth', 'tag:response', 'auth:response'],
      'an answer stops the request chain; the response hooks still see it (headers only, the status stays)',
    );
    assert.equal(up.seen.length, 0);

    order.length = 0;
    const ok = await send(`${url}/x`, { headers: { authorization: 'Bearer ok' } });
    assert.equal(ok.status, 203);
    assert.equal(ok.headers['x-auth'], 'checked');
    assert.equal(JSON.parse(ok.body).headers['x-tag'], 'yes');
    assert.deepEqual(order, ['auth', 'tag', 'tag:response', 'auth:response']);
  } finally {
    server.closeAllConnections();
    server.close();
    await plan.close();
    await up.close();
  }
});
