// One suite run against every balancer (as Hono runs one router suite against each router).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { BalancerKind, PickInput } from '../../src/upstream/balancers/types.ts';
import { Target } from '../../src/upstream/target.ts';

let nextPort = 10_000;

/** Targets with distinct addresses (never connected to: balancers only look at them). */
export function makeTargets(weights: number[]): Target[] {
  return weights.map(
    (weight) =>
      new Target(`http://127.0.0.1:${nextPort++}`, {
        weight,
        backup: false,
        drain: false,
        maxConnections: 1,
        connectTimeout: 1000,
        headersTimeout: 1000,
        bodyTimeout: 1000,
        keepAliveTimeout: 1000,
      }),
  );
}

/** makeTargets, with every target's pool closed when the test file ends. */
export function targetFactory(): (weights: number[]) => Target[] {
  const all: Target[] = [];
  after(() => Promise.all(all.map((t) => t.close())));
  return (weights) => {
    const t = makeTargets(weights);
    all.push(...t);
    return t;
  };
}

export function input(i: number): PickInput {
  return { clientIp: `10.0.${(i >> 8) & 255}.${i & 255}`, hashValue: `key-${i}`, path: `/p/${i}` };
}

export function balancerConformance(name: string, kind: BalancerKind): void {
  const fresh = targetFactory();

  test(`${name}: every pick is one of the targets, and every target gets picked`, () => {
    const targets = fresh([1, 1, 1]);
    const b = kind.create(targets);
    const seen = new Set<Target>();
    for (let i = 0; i < 300; i++) {
      const t = b.pick(input(i));
      assert.ok(t && targets.includes(t));
      seen.add(t);
    }
    assert.equal(seen.size, 3);
  });

  test(`${name}: unhealthy targets are skipped; none healthy gives undefined`, () => {
    const targets = fresh([1, 1, 1]);
    const b = kind.create(targets);
    targets[1].healthy = false;
    for (let i = 0; i < 200; i++) assert.notEqual(b.pick(input(i)), targets[1]);
    for (const t of targets) t.healthy = false;
    assert.equal(b.pick(input(1)), undefined);
  });

  test(`${name}: excluded targets are skipped (retries go elsewhere)`, () => {
    const targets = fresh([1, 1, 1]);
    const b = kind.create(targets);
    for (let i = 0; i < 200; i++) {
      const first = b.pick(input(i))!;
      const second = b.pick(input(i), new Set([first]));
      assert.ok(second && second !== first);
    }
    assert.equal(b.pick(input(0), new Set(targets)), undefined);
  });

  test(`${name}: a single target is always picked`, () => {
    const targets = fresh([3]);
    const b = kind.create(targets);
    for (let i = 0; i < 20; i++) assert.equal(b.pick(input(i)), targets[0]);
  });
}
