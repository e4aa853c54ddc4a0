// The Limits object on its own: which parts exist for which config, the offences a finished request
// counts as, the body-rate measure (grace, rate, time Gatehouse was not reading), and the metric
// families /metrics shows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limitsSchema } from '../../src/config/schema.ts';
import { BodyRateWatcher } from '../../src/limits/bodyRate.ts';
import { Limits, offenceOf } from '../../src/limits/index.ts';
import type { RequestContext } from '../../src/pipeline/context.ts';
import { ProxyError, type Reason } from '../../src/pipeline/errors.ts';
import type { Runtime } from '../../src/pipeline/runtime.ts';

const limitsOf = (input: object) => new Limits(limitsSchema.parse(input));

test('each part exists only when configured', () => {
  const none = limitsOf({});
  assert.equal(none.bans, null);
  assert.equal(none.clientUpstream, null);
  assert.equal(none.bodyRate, null);
  assert.equal(none.isBanned('10.0.0.1'), false);
  none.offence('10.0.0.1', 'rate_limited'); // a no-op without limits.ban
  const all = limitsOf({
    upstreamConnectionsPerClient: 4,
    minRequestBodyRate: '2kb/s',
    minRequestBodyRateGrace: '3s',
    ban: { after: 2 },
  });
  assert.equal(all.clientUpstream?.max, 4);
  assert.equal(all.bodyRate?.rate, 2048);
  assert.equal(all.bodyRate?.grace, 3000);
  assert.equal(all.bans?.config.window, 60_000, 'ban defaults: window 1m');
  assert.equal(all.bans?.config.maxDuration, 24 * 3600_000);
  all.offence('10.0.0.1', 'waf_blocked');
  all.offence('10.0.0.1', 'waf_blocked');
  assert.equal(all.isBanned('10.0.0.1'), true);
});

function fakeCtx(reason: Reason | undefined, headers: Record<string, string> = {}): RequestContext {
  return {
    error: reason === undefined ? undefined : new ProxyError(reason),
    req: { headers },
    clientIp: '10.0.0.1',
  } as unknown as RequestContext;
}

test('offences: rate limits and WAF blocks; a 401 only when credentials were sent (a failed login)', () => {
  assert.equal(offenceOf(fakeCtx('rate_limited')), 'rate_limited');
  assert.equal(offenceOf(fakeCtx('waf_blocked')), 'waf_blocked');
  assert.equal(offenceOf(fakeCtx('unauthorized')), null, 'a challenge is not an offence');
  assert.equal(offenceOf(fakeCtx('unauthorized', { authorization: 'Basic eDp5' })), 'login_failed');
  assert.equal(offenceOf(fakeCtx('unauthorized', { 'proxy-authorization': 'Basic eDp5' })), 'login_failed');
  // Reported where they are made, not from the answer (no double count).
  assert.equal(offenceOf(fakeCtx('client_upstream_limit')), null);
  assert.equal(offenceOf(fakeCtx('request_timeout')), null);
  assert.equal(offenceOf(fakeCtx('route_not_found')), null);
  assert.equal(offenceOf(fakeCtx(undefined)), null);
});

/** A request whose body bytes and buffer the test sets, on a responder that has not answered. */
function bodyCtx() {
  const req = {
    complete: false,
    readableEnded: false,
    destroyed: false,
    readableLength: 0,
    received: 0,
    headers: {},
    socket: { bytesRead: 0 },
  };
  const res = { headersSent: false, destroyed: false };
  return { ctx: { req, res, listener: 'web', clientIp: '10.0.0.1' } as unknown as RequestContext, req, res };
}

test('body rate: nothing before the grace; below the rate after it; time with unread bytes forgiven', () => {
  const clock = { now: 0 };
  const cut: { bytes: number; ms: number }[] = [];
  const w = new BodyRateWatcher({ rate: 1000, grace: 300, now: () => clock.now }, (_rt, _ctx, bytes, ms) =>
    cut.push({ bytes, ms }),
  );
  const rt = {} as Runtime;
  const slow = bodyCtx(); // sends nothing
  const fast = bodyCtx(); // 200 bytes every 50 ms = 4,000 B/s
  const held = bodyCtx(); // sends nothing, but Gatehouse holds bytes it has not passed on
  const done = bodyCtx(); // its body ends at once
  for (const c of [slow, fast, held, done]) w.watch(rt, c.ctx);
  done.req.complete = true;
  held.req.readableLength = 16_384;
  const advance = (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      clock.now += 50;
      fast.req.received += 200;
      w.sweep();
    }
  };
  advance(250);
  assert.equal(cut.length, 0, 'within the grace nobody is cut');
  assert.equal(w.watching, 3, 'an ended body leaves at the next sweep');
  advance(100);
  assert.equal(cut.length, 1, 'the silent body is cut after the grace');
  assert.deepEqual(cut[0], { bytes: 0, ms: 300 });
  assert.equal(w.tooSlow, 1);
  assert.equal(w.watching, 2, 'the fast one and the held one are still watched');
  // The held body's buffer drains and nothing more comes: its clock starts now, grace and all.
  held.req.readableLength = 0;
  fast.req.complete = true;
  advance(250);
  assert.equal(cut.length, 1, 'time with bytes waiting in Gatehouse was not counted');
  advance(100);
  assert.equal(cut.length, 2, 'then it is measured like any other');
  assert.equal(w.watching, 0);
  // An answer that went out (the upstream answered early) ends the watch too.
  const answered = bodyCtx();
  w.watch(rt, answered.ctx);
  answered.res.headersSent = true;
  w.sweep();
  assert.equal(w.watching, 0);
});

test('body rate: HTTP/1.x bodies are measured by the connection’s bytesRead, HTTP/2 ones by their own count', () => {
  const clock = { now: 0 };
  const cut: string[] = [];
  const w = new BodyRateWatcher({ rate: 1000, grace: 100, now: () => clock.now }, (_rt, ctx) =>
    cut.push(ctx.listener),
  );
  const h1 = bodyCtx();
  delete (h1.req as { received?: number }).received;
  (h1.ctx as { listener: string }).listener = 'h1';
  const h2 = bodyCtx();
  (h2.ctx as { listener: string }).listener = 'h2';
  w.watch({} as Runtime, h1.ctx);
  w.watch({} as Runtime, h2.ctx);
  for (let i = 0; i < 12; i++) {
    clock.now += 25;
    h1.req.socket.bytesRead += 100; // 4,000 B/s on the connection
    h2.req.socket.bytesRead += 100; // ...but other streams' bytes: this stream gets none
    w.sweep();
  }
  assert.deepEqual(cut, ['h2']);
});

test('metrics: names, types and labels', () => {
  const l = limitsOf({ maxConnectionsPerClient: 2, upstreamConnectionsPerClient: 1, ban: {} });
  const families = l.metrics();
  assert.deepEqual(
    families.map((f) => [f.name, f.type]),
    [
      ['gatehouse_connections_refused_total', 'counter'],
      ['gatehouse_tls_handshake_timeouts_total', 'counter'],
      ['gatehouse_request_body_too_slow_total', 'counter'],
      ['gatehouse_client_upstream_limit_total', 'counter'],
      ['gatehouse_requests_banned_total', 'counter'],
      ['gatehouse_bans_active', 'gauge'],
      ['gatehouse_bans_total', 'counter'],
      ['gatehouse_ban_offences_total', 'counter'],
      ['gatehouse_ban_tracked_clients', 'gauge'],
    ],
  );
  l.gateFor({ plan: { name: 'web', trusted: null } } as never);
  l.clientUpstream?.acquire('api', '10.0.0.1');
  l.clientUpstream?.acquire('api', '10.0.0.1');
  l.offence('10.0.0.1', 'client_upstream_limit');
  const get = (name: string) => families.find((f) => f.name === name)?.values();
  assert.deepEqual(
    get('gatehouse_connections_refused_total')?.map((v) => v.labels),
    [
      { listener: 'web', reason: 'max_connections' },
      { listener: 'web', reason: 'max_connections_per_client' },
      { listener: 'web', reason: 'banned' },
    ],
  );
  assert.deepEqual(get('gatehouse_client_upstream_limit_total'), [{ labels: { upstream: 'api' }, value: 1 }]);
  assert.deepEqual(get('gatehouse_ban_offences_total'), [
    { labels: { kind: 'client_upstream_limit' }, value: 1 },
  ]);
  assert.deepEqual(get('gatehouse_bans_active'), [{ labels: {}, value: 0 }]);
  // Without limits.ban the ban families are left out.
  assert.equal(
    limitsOf({})
      .metrics()
      .some((f) => f.name.startsWith('gatehouse_ban')),
    false,
  );
});
