import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { upstreamSchema } from '../../src/config/schema.ts';
import type { RequestContext } from '../../src/pipeline/context.ts';
import type { Target } from '../../src/upstream/target.ts';
import { tlsMaterial } from '../../src/upstream/tlsMaterial.ts';
import { Upstream } from '../../src/upstream/upstream.ts';

const open: Upstream[] = [];
after(() => Promise.all(open.map((u) => u.close())));

function upstream(cfg: Record<string, unknown>, ports = [1, 2, 3]): Upstream {
  const c = upstreamSchema.parse({
    targets: ports.map((p) => ({ url: `http://127.0.0.1:${20_000 + p}` })),
    ...cfg,
  });
  const u = new Upstream('u', c, tlsMaterial('u', c));
  open.push(u);
  return u;
}

/** A request context as far as picking and retrying look at it. */
function request(u: Upstream, headers: Record<string, string> = {}): RequestContext {
  const ctx = {
    clientIp: '10.0.0.1',
    path: '/x',
    query: '',
    req: { headers },
    attempts: 0,
    target: undefined,
  };
  const c = ctx as unknown as RequestContext;
  c.target = u.pick(c);
  c.attempts = 1;
  return c;
}

const FAR = () => performance.now() + 60_000;

test('nextTarget: a target not tried yet, until tries run out', () => {
  const u = upstream({ retry: { attempts: 3 } });
  const ctx = request(u);
  const tried = new Set<Target>();
  const first = ctx.target as Target;
  const second = u.nextTarget(ctx, tried, 'reset', 'GET', true, FAR());
  assert.ok(second !== undefined && second !== first);
  assert.deepEqual([...tried], [first]);
  ctx.target = second;
  ctx.attempts = 2;
  const third = u.nextTarget(ctx, tried, 'reset', 'GET', true, FAR());
  assert.ok(third !== undefined && third !== first && third !== second);
  ctx.target = third;
  ctx.attempts = 3;
  assert.equal(u.nextTarget(ctx, tried, 'reset', 'GET', true, FAR()), undefined, 'attempts: 3');
});

test('nextTarget: no untried target left, the deadline, the policy', () => {
  const u = upstream({ retry: { attempts: 5 } }, [1, 2]);
  const ctx = request(u);
  const tried = new Set<Target>();
  ctx.target = u.nextTarget(ctx, tried, 'connect-failure', 'POST', true, FAR());
  ctx.attempts = 2;
  assert.equal(u.nextTarget(ctx, tried, 'connect-failure', 'GET', true, FAR()), undefined, 'both tried');
  const v = request(upstream({}));
  assert.equal(v.attempts, 1);
  assert.equal(
    u.nextTarget(v, new Set(), 'timeout', 'GET', true, performance.now() - 1),
    undefined,
    'deadline',
  );
  assert.equal(u.nextTarget(v, new Set(), 'timeout', 'POST', true, FAR()), undefined, 'POST after a timeout');
});

test('nextTarget: a target whose circuit is open is refused; budget refusals are counted', () => {
  const u = upstream(
    {
      maxConnectionsPerTarget: 1,
      circuitBreaker: { maxPending: 0 },
      retry: { budget: { percent: 0, minRetries: 1 } },
    },
    [1, 2],
  );
  const ctx = request(u);
  const other = u.targets.find((t) => t !== ctx.target) as Target;
  other.active = 1;
  assert.equal(u.nextTarget(ctx, new Set(), 'connect-failure', 'GET', true, FAR()), undefined);
  other.active = 0;
  assert.equal(u.nextTarget(ctx, new Set(), 'reset', 'GET', true, FAR()), other);
  assert.equal(u.nextTarget(ctx, new Set(), 'reset', 'GET', true, FAR()), undefined);
  assert.equal(u.retriesDenied, 1);
});

test('backup targets are picked only when no primary is available', () => {
  const c = upstreamSchema.parse({
    targets: [{ url: 'http://127.0.0.1:20011' }, { url: 'http://127.0.0.1:20012', backup: true }],
  });
  const u = new Upstream('u', c, tlsMaterial('u', c));
  open.push(u);
  const ctx = request(u);
  assert.equal(ctx.target, u.targets[0]);
  u.targets[0].healthy = false;
  assert.equal(u.pick(ctx), u.targets[1]);
});

test('consistentHash hashes the hashKey, and the path when the request has no such value', () => {
  const u = upstream({ loadBalancer: 'consistentHash', hashKey: 'header:x-user' }, [1, 2, 3, 4, 5, 6]);
  const byUser = new Set(
    Array.from({ length: 20 }, (_, i) => u.pick(request(u, { 'x-user': 'alice', 'x-i': `${i}` }))),
  );
  assert.equal(byUser.size, 1);
  const p = upstream({ loadBalancer: 'consistentHash' }, [1, 2, 3, 4, 5, 6]);
  assert.equal(
    u.pick(request(u))?.id,
    p.pick(request(p))?.id,
    'no header: the path decides, as with hashKey: path',
  );
});

test('a reload keeps health, ejection (its timer re-armed) and the totals; a new target ramps up', async () => {
  const cfg = { slowStart: '10s', outlierDetection: { consecutiveFailures: 1, baseEjectionTime: '60ms' } };
  const old = upstream(cfg, [1, 2]);
  const changes: string[] = [];
  old.start(() => {});
  old.outlier.failure(old.targets[0], 'upstream_reset');
  old.targets[1].healthy = false;
  old.retries = 4;
  old.stop();
  const next = upstream(cfg, [1, 2, 3]);
  next.adopt(old);
  next.start((_u, t, change) => changes.push(`${t.id} ${change}`));
  assert.equal(next.targets[0].state, 'ejected');
  assert.equal(next.targets[1].state, 'unhealthy');
  assert.equal(next.retries, 4);
  assert.equal(next.ejectionsTotal, 1);
  assert.ok(next.targets[2].effectiveWeight() < 1, 'the added target starts its ramp');
  await sleep(90);
  assert.deepEqual(changes, [`${next.targets[0].id} is back: its ejection ran out`]);
  assert.ok(next.targets[0].effectiveWeight() < 1, 'back from an ejection: slow start');
});
