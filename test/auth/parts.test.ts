// The small parts of the auth middlewares: credential and token parsing, the query-parameter cut,
// the key comparison, header values sent upstream, challenge quoting, and the identity each
// middleware leaves on the request for the access log (auth/common.ts AUTH_USER).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { AUTH_USER, authUser, headerValue, quoted } from '../../src/auth/common.ts';
import { apiKeySchema, basicAuthSchema } from '../../src/config/schema.ts';
import { apiKey, keyMatcher, takeParam } from '../../src/middleware/apiKey.ts';
import { basicAuth, parseBasic } from '../../src/middleware/basicAuth.ts';
import { cookieValue, tokenOf } from '../../src/middleware/jwt.ts';
import type { LocalResponse } from '../../src/middleware/types.ts';
import type { RequestContext } from '../../src/pipeline/context.ts';
import { tempDir } from '../helpers/certs.ts';

/** Just what the auth hooks read of a request. */
function ctxOf(headers: [string, string][], query = ''): RequestContext {
  const h: Record<string, string> = {};
  for (const [k, v] of headers) h[k.toLowerCase()] ??= v;
  return {
    req: { headers: h, rawHeaders: headers.flat() },
    query,
    vars: undefined,
  } as unknown as RequestContext;
}
const env = () => {
  const closers: (() => void)[] = [];
  return {
    env: { onClose: (f: () => void) => closers.push(f), caches: null },
    close: () => {
      for (const f of closers) f();
    },
  };
};

test('parseBasic: RFC 7617 credentials, UTF-8, the user ends at the first colon', () => {
  const b = (s: string) => `Basic ${Buffer.from(s, 'utf8').toString('base64')}`;
  assert.deepEqual(parseBasic(b('alice:pw')), { user: 'alice', password: 'pw', pair: 'alice:pw' });
  assert.deepEqual(parseBasic(b('al:ice:pw'))?.user, 'al');
  assert.deepEqual(parseBasic(b('al:ice:pw'))?.password, 'ice:pw');
  assert.deepEqual(parseBasic(b('jörg:pässwörd'))?.password, 'pässwörd');
  assert.deepEqual(parseBasic(`bAsIc   ${Buffer.from('a:b').toString('base64')}  `)?.user, 'a');
  assert.equal(parseBasic(b('a:'))?.password, '');
  for (const bad of [
    b(':pw'),
    b('nocolon'),
    b('a:b\nc'),
    b('a\u0000:b'),
    `Basic ${Buffer.from([0x61, 0x3a, 0xff]).toString('base64')}`,
    'Basic a',
    'Basic ab=c',
    'Basic !!!!',
    'Basic',
    'Digest abc',
    `Basic  ${Buffer.from('a:b').toString('base64')}x`,
  ])
    assert.equal(parseBasic(bad), undefined, bad);
});

test('tokenOf: Bearer first, then the cookie; malformed Bearer is an empty token, two fields null', () => {
  assert.equal(tokenOf(ctxOf([['authorization', 'Bearer a.b.c']]), undefined), 'a.b.c');
  assert.equal(tokenOf(ctxOf([['authorization', 'bearer   a-b_c~d+e/f==']]), undefined), 'a-b_c~d+e/f==');
  assert.equal(tokenOf(ctxOf([['authorization', 'Bearer a b']]), undefined), '');
  assert.equal(tokenOf(ctxOf([['authorization', 'Bearer']]), undefined), '');
  assert.equal(tokenOf(ctxOf([['authorization', 'Bearertoken']]), undefined), undefined);
  assert.equal(tokenOf(ctxOf([['authorization', 'Basic abc']]), undefined), undefined);
  assert.equal(
    tokenOf(
      ctxOf([
        ['authorization', 'Basic abc'],
        ['cookie', 's=t1'],
      ]),
      's',
    ),
    't1',
  );
  assert.equal(
    tokenOf(
      ctxOf([
        ['authorization', 'Bearer h'],
        ['cookie', 's=t1'],
      ]),
      's',
    ),
    'h',
  );
  assert.equal(
    tokenOf(
      ctxOf([
        ['authorization', 'Bearer a'],
        ['Authorization', 'Bearer b'],
      ]),
      undefined,
    ),
    null,
  );
  assert.equal(tokenOf(ctxOf([]), 's'), undefined);
  assert.equal(cookieValue('a=1; s="q.u.o"; s=second', 's'), 'q.u.o');
  assert.equal(cookieValue(['a=1', 'ss=2', 's=3'], 's'), '3');
  assert.equal(cookieValue('as=1', 's'), undefined);
});

test('takeParam: every occurrence by its decoded name, the rest of the query kept as sent', () => {
  assert.deepEqual(takeParam('?a=1&key=abc&b=%20x', 'key'), { values: ['abc'], rest: '?a=1&b=%20x' });
  assert.deepEqual(takeParam('?key=a%2Bb+c', 'key'), { values: ['a+b c'], rest: '' });
  assert.deepEqual(takeParam('?k%65y=1&key=2', 'key'), { values: ['1', '2'], rest: '' });
  assert.deepEqual(takeParam('?keys=1&akey=2&key', 'key'), { values: [''], rest: '?keys=1&akey=2' });
  assert.deepEqual(takeParam('?a=1', 'key'), { values: [], rest: '?a=1' });
  assert.deepEqual(takeParam('?%zz=1&key=%zz', 'key'), { values: ['%zz'], rest: '?%zz=1' });
  assert.deepEqual(takeParam('', 'key'), { values: [], rest: '' });
});

test('keyMatcher: the right name for each key, none for anything else, all keys compared every time', () => {
  const keys = ['one', 'two', 'three'].map((k) => ({
    name: `n-${k}`,
    sha256: createHash('sha256').update(k).digest('hex'),
  }));
  const match = keyMatcher(keys);
  assert.equal(match('one'), 'n-one');
  assert.equal(match('three'), 'n-three');
  assert.equal(match('four'), undefined);
  assert.equal(match(''), undefined);
  assert.equal(match(keys[0].sha256), undefined, 'the digest is not the key');
  // Same digest twice: the first name wins (validation refuses such a config anyway).
  assert.equal(keyMatcher([...keys, { name: 'dup', sha256: keys[0].sha256 }])('one'), 'n-one');
  assert.equal(keyMatcher([])('one'), undefined);
  // Digests that differ in one bit of any word are told apart.
  const base = createHash('sha256').update('base').digest();
  const near = Array.from({ length: 32 }, (_, i) => {
    const d = Buffer.from(base);
    d[i] ^= 0x80;
    return { name: `near-${i}`, sha256: d.toString('hex') };
  });
  assert.equal(keyMatcher(near)('base'), undefined);
  assert.equal(keyMatcher([...near, { name: 'it', sha256: base.toString('hex') }])('base'), 'it');
});

test('headerValue and quoted: no control characters reach a header; UTF-8 goes as bytes', () => {
  assert.equal(headerValue('alice'), 'alice');
  assert.equal(headerValue('a\tb'), 'a\tb');
  assert.equal(headerValue('a\r\nx-admin: 1'), undefined);
  assert.equal(headerValue('a\u0000'), undefined);
  assert.equal(headerValue('ü'), '\u00c3\u00bc');
  assert.equal(headerValue('x'.repeat(9000)), undefined);
  assert.equal(quoted('Staff "area" \\ x\r\n'), '"Staff \\"area\\" \\\\ x"');
});

test('each middleware leaves who it authenticated in ctx.vars (AUTH_USER) for the access log', async () => {
  const keyed = apiKey.create(
    'k',
    apiKeySchema.parse({
      keys: [{ name: 'ci-bot', sha256: createHash('sha256').update('s3cret').digest('hex') }],
    }),
    env().env,
  );
  const c1 = ctxOf([['x-api-key', 's3cret']]);
  assert.equal(keyed.onRequest?.(c1), undefined);
  assert.equal(authUser(c1), 'ci-bot');
  assert.equal(c1.vars?.get(AUTH_USER), 'ci-bot');
  const c2 = ctxOf([['x-api-key', 'wrong']]);
  assert.equal((keyed.onRequest!(c2) as LocalResponse).status, 401);
  assert.equal(authUser(c2), undefined);

  const dir = tempDir();
  const file = join(dir, 'users');
  writeFileSync(file, `alice:${bcrypt.hashSync('pw', 4)}\n`);
  const e = env();
  const basic = basicAuth.create('b', basicAuthSchema.parse({ usersFile: file }), e.env);
  try {
    const c3 = ctxOf([['authorization', `Basic ${Buffer.from('alice:pw').toString('base64')}`]]);
    assert.equal(await basic.onRequest?.(c3), undefined);
    assert.equal(authUser(c3), 'alice');
    // Now from the cache: synchronous.
    const c4 = ctxOf([['authorization', `Basic ${Buffer.from('alice:pw').toString('base64')}`]]);
    assert.equal(basic.onRequest?.(c4), undefined);
    assert.equal(authUser(c4), 'alice');
  } finally {
    e.close();
  }
});
