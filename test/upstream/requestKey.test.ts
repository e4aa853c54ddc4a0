// src/routing/requestKey.ts: shared by the hashing balancers (upstream hashKey) and rateLimit (key).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestContext } from '../../src/pipeline/context.ts';
import { requestKey } from '../../src/routing/requestKey.ts';

const ctx = (headers: Record<string, string | string[]>, query = '') =>
  ({ clientIp: '10.0.0.7', path: '/a/b', query, req: { headers } }) as unknown as RequestContext;

test('clientIp, path and route', () => {
  assert.equal(requestKey('clientIp')(ctx({})), '10.0.0.7');
  assert.equal(requestKey('path')(ctx({})), '/a/b');
  assert.equal(requestKey('route')(ctx({})), '');
});

test('header: case-insensitive name, repeated fields joined, missing is undefined', () => {
  const k = requestKey('header:X-Api-Key');
  assert.equal(k(ctx({ 'x-api-key': 'abc' })), 'abc');
  assert.equal(k(ctx({ 'x-api-key': ['a', 'b'] })), 'a,b');
  assert.equal(k(ctx({})), undefined);
});

test('cookie and query', () => {
  const c = requestKey('cookie:session');
  assert.equal(c(ctx({ cookie: 'a=1; session=s3; b=2' })), 's3');
  assert.equal(c(ctx({ cookie: 'a=1' })), undefined);
  assert.equal(c(ctx({})), undefined);
  const q = requestKey('query:user');
  assert.equal(q(ctx({}, '?x=1&user=u9')), 'u9');
  assert.equal(q(ctx({}, '?x=1')), undefined);
});
