import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetryBudget } from '../../src/upstream/retryBudget.ts';

const take = (b: RetryBudget, n: number) =>
  Array.from({ length: n }, () => b.tryRetry()).filter(Boolean).length;

test('retries are a share of the requests in the window, or the minimum when that is more', () => {
  const b = new RetryBudget(20, 3, 60_000);
  assert.equal(take(b, 10), 3, 'no traffic yet: the minimum');
  for (let i = 0; i < 100; i++) b.request();
  assert.equal(take(b, 100), 17, '20% of 100 requests, 3 already spent');
  for (let i = 0; i < 10; i++) b.request();
  assert.equal(take(b, 10), 2);
});

test('the window slides: old requests and retries fall out of it', async () => {
  const b = new RetryBudget(50, 0, 200);
  for (let i = 0; i < 10; i++) b.request();
  assert.equal(take(b, 10), 5);
  await new Promise((r) => setTimeout(r, 260));
  assert.equal(take(b, 10), 0, 'the requests that paid for retries are gone');
  for (let i = 0; i < 4; i++) b.request();
  assert.equal(take(b, 10), 2);
});
