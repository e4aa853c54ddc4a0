// The comparison rules of request mirroring (src/traffic/diff.ts): JSON by value (key order
// ignored, arrays in order), ignored fields by name at any depth or by dotted path from the top,
// and byte comparison (sha256 and length) for everything that is not JSON on both sides.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  type BodyCapture,
  bodyDiff,
  jsonDiff,
  jsonIgnore,
  NO_IGNORE,
  showJson,
  truncate,
} from '../../src/traffic/diff.ts';

function cap(body: string | Buffer, encoding = ''): BodyCapture {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return { length: bytes.length, bytes, hash: null, encoding };
}

test('key order does not matter; values do', () => {
  assert.equal(jsonDiff({ a: 1, b: { c: 2, d: [1, 2] } }, { b: { d: [1, 2], c: 2 }, a: 1 }), null);
  assert.deepEqual(jsonDiff({ a: 1, b: 2 }, { b: 3, a: 1 }), { path: '$.b', primary: '2', mirror: '3' });
});

test('arrays: order matters, nested paths name the first difference', () => {
  const a = {
    items: [
      { id: 1, price: 10 },
      { id: 2, price: 20 },
      { id: 3, tags: ['x', ['y', 'z']] },
    ],
  };
  const b = {
    items: [
      { id: 1, price: 10 },
      { id: 2, price: 20 },
      { id: 3, tags: ['x', ['y', 'Z']] },
    ],
  };
  assert.deepEqual(jsonDiff(a, b), { path: '$.items[2].tags[1][1]', primary: '"z"', mirror: '"Z"' });
  assert.deepEqual(jsonDiff([1, 2], [2, 1]), { path: '$[0]', primary: '1', mirror: '2' });
  // A longer array: the first element only one side has.
  assert.deepEqual(jsonDiff({ l: [1, 2] }, { l: [1, 2, 3] }), {
    path: '$.l[2]',
    primary: '(absent)',
    mirror: '3',
  });
  assert.deepEqual(jsonDiff({ l: [1, 2, 3] }, { l: [1, 2] }), {
    path: '$.l[2]',
    primary: '3',
    mirror: '(absent)',
  });
});

test('missing keys on either side, type changes, null, and odd key names', () => {
  assert.deepEqual(jsonDiff({ a: 1, b: 2 }, { a: 1 }), { path: '$.b', primary: '2', mirror: '(absent)' });
  assert.deepEqual(jsonDiff({ a: 1 }, { a: 1, z: true }), {
    path: '$.z',
    primary: '(absent)',
    mirror: 'true',
  });
  assert.deepEqual(jsonDiff({ a: '1' }, { a: 1 }), { path: '$.a', primary: '"1"', mirror: '1' });
  assert.deepEqual(jsonDiff({ a: null }, { a: {} }), { path: '$.a', primary: 'null', mirror: '{}' });
  assert.deepEqual(jsonDiff({ a: [] }, { a: {} }), { path: '$.a', primary: '[]', mirror: '{}' });
  assert.deepEqual(jsonDiff({ 'a b': 1 }, { 'a b': 2 }), { path: '$["a b"]', primary: '1', mirror: '2' });
  assert.equal(jsonDiff(1.0, 1), null);
  assert.equal(jsonDiff('x', 'x'), null);
  assert.deepEqual(jsonDiff(true, false), { path: '$', primary: 'true', mirror: 'false' });
});

test('an ignored name is dropped at any depth, on both sides', () => {
  const ig = jsonIgnore(['requestTime']);
  const a = { requestTime: 1, data: { requestTime: 5, v: 1 }, list: [{ requestTime: 7 }] };
  const b = { requestTime: 2, data: { v: 1 }, list: [{ requestTime: 8 }] };
  assert.equal(jsonDiff(a, b, ig), null);
  // Only that name: a neighbour still counts.
  assert.deepEqual(jsonDiff({ ...a, x: 1 }, { ...b, x: 2 }, ig), { path: '$.x', primary: '1', mirror: '2' });
  // Present only on the mirror's side: ignored too.
  assert.equal(jsonDiff({ v: 1 }, { v: 1, requestTime: 3 }, ig), null);
});

test('a dotted path is ignored only there, from the top (arrays are transparent)', () => {
  const ig = jsonIgnore(['meta.took', '$.items.at']);
  assert.equal(jsonDiff({ meta: { took: 3, n: 1 } }, { meta: { took: 9, n: 1 } }, ig), null);
  // `took` elsewhere is compared.
  assert.deepEqual(jsonDiff({ took: 3 }, { took: 4 }, ig), { path: '$.took', primary: '3', mirror: '4' });
  assert.deepEqual(jsonDiff({ x: { meta: { took: 3 } } }, { x: { meta: { took: 4 } } }, ig), {
    path: '$.x.meta.took',
    primary: '3',
    mirror: '4',
  });
  // Through an array: items[].at is ignored, items[].v is not.
  assert.equal(
    jsonDiff({ items: [{ at: 1, v: 1 }, { at: 2 }] }, { items: [{ at: 5, v: 1 }, { at: 6 }] }, ig),
    null,
  );
  assert.deepEqual(jsonDiff({ items: [{ at: 1, v: 1 }] }, { items: [{ at: 5, v: 2 }] }, ig), {
    path: '$.items[0].v',
    primary: '1',
    mirror: '2',
  });
  // The rest of meta still counts.
  assert.equal(jsonDiff({ meta: { took: 3, n: 1 } }, { meta: { took: 9, n: 2 } }, ig)?.path, '$.meta.n');
});

test('JSON bodies: compared by value, ignored fields dropped; gzip undone', () => {
  const ig = jsonIgnore(['requestTime']);
  assert.equal(bodyDiff('json', cap('{"a":1,"b":[1,2]}'), cap('{ "b": [1, 2], "a": 1 }'), ig, 1 << 20), null);
  assert.equal(
    bodyDiff('json', cap('{"a":1,"requestTime":5}'), cap('{"a":1,"requestTime":6}'), ig, 1 << 20),
    null,
  );
  assert.deepEqual(bodyDiff('json', cap('{"a":{"price":1}}'), cap('{"a":{"price":2}}'), ig, 1 << 20), {
    detail: 'JSON differs at $.a.price',
    primary: '1',
    mirror: '2',
  });
  const z = (s: string) => cap(gzipSync(Buffer.from(s)), 'gzip');
  assert.equal(bodyDiff('json', z('{"a":1,"b":2}'), z('{"b":2,"a":1}'), ig, 1 << 20), null);
  assert.equal(bodyDiff('json', z('{"a":1}'), z('{"a":2}'), ig, 1 << 20)?.detail, 'JSON differs at $.a');
  // hash mode: key order is a difference.
  assert.match(
    bodyDiff('hash', cap('{"a":1,"b":2}'), cap('{"b":2,"a":1}'), NO_IGNORE, 1 << 20)?.detail ?? '',
    /^body bytes differ \(sha256/,
  );
  assert.equal(bodyDiff('none', cap('x'), cap('y'), NO_IGNORE, 1 << 20), null);
});

test('not JSON on either side: compared by bytes (hash and length)', () => {
  assert.equal(bodyDiff('json', cap('<html>x</html>'), cap('<html>x</html>'), NO_IGNORE, 1 << 20), null);
  assert.deepEqual(bodyDiff('json', cap('hello'), cap('hellO'), NO_IGNORE, 1 << 20)?.primary, 'hello');
  assert.match(
    bodyDiff('json', cap('hello'), cap('hello!'), NO_IGNORE, 1 << 20)?.detail ?? '',
    /length 5 vs 6/,
  );
  // One JSON, one not: bytes.
  assert.match(
    bodyDiff('json', cap('{"a":1}'), cap('{"a":1'), NO_IGNORE, 1 << 20)?.detail ?? '',
    /length 7 vs 6/,
  );
  // Empty bodies match.
  assert.equal(bodyDiff('json', cap(''), cap(''), NO_IGNORE, 1 << 20), null);
  // Beyond maxBody (bytes not kept): hash and length only, even for JSON.
  const big = (s: string): BodyCapture => ({
    ...cap(s),
    bytes: null,
    hash: createHash('sha256').update(s).digest('hex'),
  });
  assert.equal(bodyDiff('json', big('{"a":1}'), big('{"a":1}'), NO_IGNORE, 4), null);
  assert.match(
    bodyDiff('json', big('{"a":1,"b":2}'), big('{"b":2,"a":1}'), NO_IGNORE, 4)?.detail ?? '',
    /sha256/,
  );
});

test('values are shown cut to 200 characters', () => {
  const long = 'x'.repeat(500);
  assert.equal(truncate(long).length, 200);
  assert.equal(showJson(long).length, 200);
  assert.equal(showJson(undefined), '(absent)');
  const d = jsonDiff({ s: long }, { s: `${long}y` });
  assert.equal(d?.primary.length, 200);
});
