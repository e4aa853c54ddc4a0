import assert from 'node:assert/strict';
import { test } from 'node:test';
import { balancers } from '../../../src/upstream/balancers/index.ts';
import type { Target } from '../../../src/upstream/target.ts';
import { balancerConformance, input, targetFactory } from '../../conformance/balancer.suite.ts';

for (const [name, kind] of Object.entries(balancers)) balancerConformance(name, kind);

const targets = targetFactory();

function counts(ts: Target[], picks: (Target | undefined)[]): number[] {
  return ts.map((t) => picks.filter((p) => p === t).length);
}

test('roundRobin: smooth weighted, as nginx (5,1,1 → a a b a c a a)', () => {
  const ts = targets([5, 1, 1]);
  const b = balancers.roundRobin.create(ts);
  const seq = Array.from({ length: 7 }, () => ts.indexOf(b.pick(input(0))!));
  assert.deepEqual(seq, [0, 0, 1, 0, 2, 0, 0]);
  const picks = Array.from({ length: 700 }, () => b.pick(input(0)));
  assert.deepEqual(counts(ts, picks), [500, 100, 100]);
});

test('roundRobin: its state is its own, so two balancers over the same targets keep their order', () => {
  const ts = targets([5, 1, 1]);
  const a = balancers.roundRobin.create(ts);
  const b = balancers.roundRobin.create(ts);
  const seq = Array.from({ length: 7 }, () => {
    b.pick(input(0));
    return ts.indexOf(a.pick(input(0))!);
  });
  assert.deepEqual(seq, [0, 0, 1, 0, 2, 0, 0]);
});

test('leastConnections: the target with the fewest in-flight requests per weight wins', () => {
  const ts = targets([1, 1, 2]);
  const b = balancers.leastConnections.create(ts);
  ts[0].active = 3;
  ts[1].active = 1;
  ts[2].active = 4; // 4/2 = 2 per weight
  assert.equal(b.pick(input(0)), ts[1]);
  ts[1].active = 5;
  assert.equal(b.pick(input(0)), ts[2]);
  // Ties rotate rather than always choosing the first.
  for (const t of ts) t.active = 0;
  const first = new Set(Array.from({ length: 6 }, () => b.pick(input(0))));
  assert.ok(first.size >= 2);
  for (const t of ts) t.active = 0;
});

test('leastConnections: simulated load spreads by weight', () => {
  const ts = targets([1, 3]);
  const b = balancers.leastConnections.create(ts);
  const picks = [];
  for (let i = 0; i < 400; i++) {
    const t = b.pick(input(i))!;
    t.active++;
    picks.push(t);
  }
  assert.deepEqual(counts(ts, picks), [100, 300]);
  for (const t of ts) t.active = 0;
});

test('ipHash: the same client always reaches the same target; clients spread by weight', () => {
  const ts = targets([1, 1, 2]);
  const b = balancers.ipHash.create(ts);
  for (let i = 0; i < 100; i++) assert.equal(b.pick(input(i)), b.pick(input(i)));
  const c = counts(
    ts,
    Array.from({ length: 8000 }, (_, i) => b.pick(input(i))),
  );
  assert.ok(
    Math.abs(c[0] - 2000) < 300 && Math.abs(c[1] - 2000) < 300 && Math.abs(c[2] - 4000) < 400,
    `spread ${c}`,
  );
});

test('ipHash: when a target goes down only its clients move, and they come back', () => {
  const ts = targets([1, 1, 1]);
  const b = balancers.ipHash.create(ts);
  const before = Array.from({ length: 3000 }, (_, i) => b.pick(input(i)));
  ts[0].healthy = false;
  const during = Array.from({ length: 3000 }, (_, i) => b.pick(input(i)));
  for (let i = 0; i < before.length; i++) if (before[i] !== ts[0]) assert.equal(during[i], before[i]);
  ts[0].healthy = true;
  assert.deepEqual(
    Array.from({ length: 3000 }, (_, i) => b.pick(input(i))),
    before,
  );
});

test('consistentHash: keys spread evenly, and adding a target moves only about 1/n of them', () => {
  const three = targets([1, 1, 1]);
  const four = [...three, ...targets([1])];
  const b3 = balancers.consistentHash.create(three);
  const b4 = balancers.consistentHash.create(four);
  const n = 20_000;
  const c = counts(
    three,
    Array.from({ length: n }, (_, i) => b3.pick(input(i))),
  );
  for (const k of c) assert.ok(Math.abs(k - n / 3) < n * 0.06, `uneven spread ${c}`);
  let moved = 0;
  for (let i = 0; i < n; i++) {
    const a = b3.pick(input(i));
    const bb = b4.pick(input(i));
    if (a !== bb) {
      moved++;
      // A key that moves goes to the new target, never between old ones.
      assert.equal(bb, four[3]);
    }
  }
  const share = moved / n;
  assert.ok(share > 0.17 && share < 0.33, `moved ${share}`);
});

test('consistentHash: removing a target moves only its own keys', () => {
  const ts = targets([1, 1, 1, 1]);
  const b = balancers.consistentHash.create(ts);
  const before = Array.from({ length: 5000 }, (_, i) => b.pick(input(i)));
  ts[2].healthy = false;
  for (let i = 0; i < 5000; i++) {
    const now = b.pick(input(i));
    if (before[i] !== ts[2]) assert.equal(now, before[i]);
    else assert.notEqual(now, ts[2]);
  }
  ts[2].healthy = true;
});

test('random2: picks follow weights and prefer the less loaded of two', () => {
  const ts = targets([1, 3]);
  const b = balancers.random2.create(ts);
  const c = counts(
    ts,
    Array.from({ length: 4000 }, (_, i) => b.pick(input(i))),
  );
  // With equal load the less-loaded tie goes to the first draw, which follows weight.
  assert.ok(c[1] > c[0] * 2, `weights not followed ${c}`);
  ts[1].active = 100;
  const loaded = counts(
    ts,
    Array.from({ length: 1000 }, (_, i) => b.pick(input(i))),
  );
  assert.equal(loaded[0], 1000);
  ts[1].active = 0;
});
