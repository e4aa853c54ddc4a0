import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retrySchema } from '../../src/config/schema.ts';
import { classifyUpstreamError, ERRORS, type Reason } from '../../src/pipeline/errors.ts';
import { RetryPolicy, retryKindOf } from '../../src/upstream/retry.ts';

const FAR = () => performance.now() + 60_000;

test('each reason has its retry kind in the error table', () => {
  const kindOf = (code: string) =>
    retryKindOf(classifyUpstreamError(Object.assign(new Error(), { code })).reason);
  assert.equal(kindOf('ECONNREFUSED'), 'connect-failure');
  assert.equal(kindOf('UND_ERR_CONNECT_TIMEOUT'), 'connect-failure');
  assert.equal(kindOf('DEPTH_ZERO_SELF_SIGNED_CERT'), 'connect-failure');
  assert.equal(kindOf('UND_ERR_SOCKET'), 'reset');
  assert.equal(kindOf('UND_ERR_HEADERS_TIMEOUT'), 'timeout');
  assert.equal(kindOf('HPE_INVALID_CHUNK_SIZE'), undefined);
  assert.equal(kindOf('SOMETHING_ELSE'), undefined);
  const retried = (Object.keys(ERRORS) as Reason[]).filter((r) => retryKindOf(r) !== undefined);
  assert.deepEqual(retried.sort(), [
    'upstream_connect_failed',
    'upstream_connect_timeout',
    'upstream_reset',
    'upstream_timeout',
    'upstream_tls_failed',
  ]);
});

test('tries and the deadline come first', () => {
  const p = new RetryPolicy(retrySchema.parse({ attempts: 3 }));
  assert.equal(p.allows(1, 'reset', 'GET', true, FAR()), true);
  assert.equal(p.allows(3, 'reset', 'GET', true, FAR()), false, 'no tries left');
  assert.equal(p.allows(1, 'connect-failure', 'GET', true, performance.now()), false, 'deadline passed');
  const off = new RetryPolicy(retrySchema.parse({ attempts: 1, statuses: ['503'] }));
  assert.equal(off.allows(1, 'connect-failure', 'GET', true, FAR()), false);
  assert.equal(off.statuses, null, 'attempts: 1 retries no status');
});

test('the policy: retry.on, statuses, idempotent methods, nonIdempotent, a replayable body', () => {
  const p = new RetryPolicy(retrySchema.parse({ on: ['connect-failure', 'reset'], statuses: ['503'] }));
  assert.equal(p.allows(1, 'timeout', 'GET', true, FAR()), false, 'not in retry.on');
  assert.equal(p.allows(1, 'status', 'GET', true, FAR()), true);
  assert.equal(p.statuses?.(503), true);
  assert.equal(p.statuses?.(502), false);
  assert.equal(p.allows(1, 'reset', 'POST', true, FAR()), false, 'not idempotent');
  assert.equal(p.allows(1, 'connect-failure', 'POST', true, FAR()), true, 'nothing reached the target');
  assert.equal(p.allows(1, 'connect-failure', 'GET', false, FAR()), false, 'the body cannot be sent again');
  const none = new RetryPolicy(retrySchema.parse({}));
  assert.equal(none.allows(1, 'status', 'GET', true, FAR()), false, 'no retry.statuses');
  const post = new RetryPolicy(retrySchema.parse({ nonIdempotent: true }));
  assert.equal(post.allows(1, 'reset', 'POST', true, FAR()), true);
});

test('the budget: connect failures do not draw on it; refusals are counted', () => {
  const p = new RetryPolicy(retrySchema.parse({ budget: { percent: 0, minRetries: 2 } }));
  for (let i = 0; i < 5; i++) assert.equal(p.allows(1, 'connect-failure', 'GET', true, FAR()), true);
  assert.equal(p.allows(1, 'reset', 'GET', true, FAR()), true);
  assert.equal(p.allows(1, 'timeout', 'GET', true, FAR()), true);
  assert.equal(p.allows(1, 'reset', 'GET', true, FAR()), false);
  assert.equal(p.denied, 1);
  assert.equal(p.allows(1, 'reset', 'POST', true, FAR()), false, 'refused by the policy, not the budget');
  assert.equal(p.denied, 1);
});
