import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { outlierDetectionSchema } from '../../src/config/schema.ts';
import { OutlierDetector } from '../../src/upstream/health/passive.ts';
import type { Target } from '../../src/upstream/target.ts';
import { targetFactory } from '../conformance/balancer.suite.ts';

const targets = targetFactory();

function detector(ts: Target[], cfg: Record<string, unknown> = {}) {
  const events: string[] = [];
  const d = new OutlierDetector(ts, outlierDetectionSchema.parse(cfg), {
    ejected: (t, change) => events.push(`${ts.indexOf(t)} ${change}`),
    back: (t, change) => events.push(`${ts.indexOf(t)} ${change}`),
  });
  return { d, events };
}

test('consecutive failures eject; a success in between starts the count again', () => {
  const ts = targets([1, 1]);
  const { d, events } = detector(ts, { consecutiveFailures: 3 });
  d.failure(ts[0], 'upstream_reset');
  d.failure(ts[0], 'upstream_reset');
  d.success(ts[0]);
  d.failure(ts[0], 'upstream_reset');
  d.failure(ts[0], 'upstream_reset');
  assert.equal(ts[0].ejected, false);
  d.response(ts[0], 502);
  assert.equal(ts[0].ejected, true);
  assert.equal(ts[0].available, false);
  assert.equal(ts[0].state, 'ejected');
  assert.deepEqual(events, ['0 is ejected for 30s (3 consecutive failures, last: status 502)']);
  assert.equal(d.ejectionsTotal, 1);
  assert.equal(ts[0].outlier.ejectedTotal, 1);
  d.close();
});

test('statuses outside outlierDetection.statuses are successes; enabled: false ejects nothing', () => {
  const ts = targets([1, 1]);
  const { d } = detector(ts, { consecutiveFailures: 1 });
  d.response(ts[0], 500);
  d.response(ts[0], 404);
  assert.equal(ts[0].ejected, false);
  const off = detector(ts, { consecutiveFailures: 1, enabled: false });
  off.d.failure(ts[0], 'upstream_reset');
  off.d.response(ts[0], 503);
  assert.equal(ts[0].ejected, false);
  assert.equal(off.d.failureStatus, null);
});

test('the ejection ends on its timer, once; the next lasts one base time more, up to the maximum', async () => {
  const ts = targets([1, 1]);
  const { d, events } = detector(ts, {
    consecutiveFailures: 1,
    baseEjectionTime: '40ms',
    maxEjectionTime: '70ms',
  });
  d.failure(ts[0], 'upstream_timeout');
  assert.equal(ts[0].ejected, true);
  await sleep(60);
  assert.equal(ts[0].ejected, false);
  assert.equal(ts[0].available, true);
  assert.deepEqual(events.slice(1), ['0 is back: its ejection ran out']);
  d.failure(ts[0], 'upstream_timeout');
  assert.match(events[2], /is ejected for 70ms/, 'two base times, capped at the maximum');
  d.endEjection(ts[0], 'is back: the active check passed (status 200)');
  d.endEjection(ts[0], 'is back: again?');
  await sleep(90);
  assert.deepEqual(
    events.slice(3),
    ['0 is back: the active check passed (status 200)'],
    'ended once, timer cleared',
  );
  d.close();
});

test('ejections are forgiven after maxEjectionTime without one', async () => {
  const ts = targets([1, 1]);
  const { d, events } = detector(ts, {
    consecutiveFailures: 1,
    baseEjectionTime: '20ms',
    maxEjectionTime: '40ms',
  });
  d.failure(ts[0], 'upstream_reset');
  d.endEjection(ts[0], 'is back');
  await sleep(60);
  d.success(ts[0]);
  d.failure(ts[0], 'upstream_reset');
  assert.match(events.at(-1) ?? '', /is ejected for 20ms/);
  d.close();
});

test('never more than maxEjectionPercent of the targets (at least one), never a single target', () => {
  const four = targets([1, 1, 1, 1]);
  const { d } = detector(four, { consecutiveFailures: 1, maxEjectionPercent: 50 });
  for (const t of four) d.failure(t, 'upstream_reset');
  assert.deepEqual(
    four.map((t) => t.ejected),
    [true, true, false, false],
  );
  d.close();
  const two = targets([1, 1]);
  const small = detector(two, { consecutiveFailures: 1, maxEjectionPercent: 10 });
  for (const t of two) small.d.failure(t, 'upstream_reset');
  assert.deepEqual(
    two.map((t) => t.ejected),
    [true, false],
    'at least one',
  );
  small.d.close();
  const one = targets([1]);
  const single = detector(one, { consecutiveFailures: 1 });
  for (let i = 0; i < 5; i++) single.d.failure(one[0], 'upstream_reset');
  assert.equal(one[0].ejected, false);
  const none = targets([1, 1]);
  const zero = detector(none, { consecutiveFailures: 1, maxEjectionPercent: 0 });
  zero.d.failure(none[0], 'upstream_reset');
  assert.equal(none[0].ejected, false);
});

test('a reload carries the record over and re-arms the timer on the new target', async () => {
  const old = targets([1, 1]);
  const before = detector(old, { consecutiveFailures: 1, baseEjectionTime: '50ms' });
  before.d.failure(old[0], 'upstream_reset');
  const now = targets([1, 1]);
  const after = detector(now, { consecutiveFailures: 1, baseEjectionTime: '50ms' });
  after.d.adopt(now[0], old[0]);
  before.d.close();
  assert.equal(now[0].ejected, true);
  assert.equal(now[0].outlier.ejections, 1);
  assert.equal(now[0].outlier.ejectedTotal, 1);
  await sleep(80);
  assert.equal(now[0].ejected, false);
  assert.deepEqual(after.events, ['0 is back: its ejection ran out']);
  assert.equal(old[0].ejected, true, 'the closed detector left its own target alone');
});
