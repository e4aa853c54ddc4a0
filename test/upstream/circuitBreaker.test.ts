import assert from 'node:assert/strict';
import { test } from 'node:test';
import { circuitBreakerSchema } from '../../src/config/schema.ts';
import { CircuitBreaker } from '../../src/upstream/circuitBreaker.ts';
import { targetFactory } from '../conformance/balancer.suite.ts';

const targets = targetFactory();

test('maxRequests bounds the requests in flight to the upstream', () => {
  const ts = targets([1, 1]);
  const b = new CircuitBreaker(ts, circuitBreakerSchema.parse({ maxRequests: 3 }), 10);
  assert.equal(b.overflowing(ts[0], 2), false);
  assert.equal(b.overflowing(ts[0], 3), true);
});

test('maxPending bounds the requests waiting for a connection, across the upstream', () => {
  const ts = targets([1, 1]);
  const b = new CircuitBreaker(ts, circuitBreakerSchema.parse({ maxPending: 2 }), 2);
  ts[0].active = 1;
  assert.equal(b.overflowing(ts[0], 1), false, 'a free connection');
  ts[0].active = 3; // one waiting
  assert.equal(b.overflowing(ts[0], 3), false);
  ts[1].active = 3; // two waiting in all
  assert.equal(b.overflowing(ts[0], 6), true);
  assert.equal(b.overflowing(ts[1], 6), true);
  ts[1].active = 1;
  assert.equal(b.overflowing(ts[1], 4), false, 'a target with a free connection is never refused');
  for (const t of ts) t.active = 0;
});
