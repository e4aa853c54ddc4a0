// The cache's rules as functions (src/cache/policy.ts), case by case from RFC 9111.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  currentAge,
  deltaSeconds,
  type Freshness,
  freshnessLifetime,
  initialAge,
  notModifiedMatches,
  type PolicyOptions,
  parseCacheControl,
  reuse,
  staleIfErrorAllows,
  storedHeaders,
  updateHeaders,
  varyKey,
  varyNames,
  varyValue,
  whyNotStorable,
} from '../../src/cache/policy.ts';

const opts: PolicyOptions = {
  storeSetCookie: false,
  storeAuthorized: false,
  heuristic: 0.1,
  maxHeuristic: 86400,
  cdnCacheControl: true,
};

test('Cache-Control: names case-insensitive, quoted values with commas and escapes, first occurrence wins', () => {
  const d = parseCacheControl('Max-Age=60, no-cache="set-cookie, x-a", private="x\\"y", max-age=5, , public');
  assert.equal(d.get('max-age'), '60');
  assert.equal(d.get('no-cache'), 'set-cookie, x-a');
  assert.equal(d.get('private'), 'x"y');
  assert.equal(d.get('public'), true);
  assert.deepEqual(parseCacheControl(['max-age=1', 's-maxage=2']).get('s-maxage'), '2');
  assert.equal(parseCacheControl(undefined).size, 0);
  assert.equal(parseCacheControl('max-age = 7').get('max-age'), '7');
});

test('delta-seconds: digits only, capped at 2^31 (§1.2.2)', () => {
  assert.equal(deltaSeconds('60'), 60);
  assert.equal(deltaSeconds('99999999999999'), 2147483648);
  assert.equal(deltaSeconds('-1'), undefined);
  assert.equal(deltaSeconds('1.5'), undefined);
  assert.equal(deltaSeconds(true), undefined);
});

test('freshness lifetime: s-maxage, max-age, Expires − Date, heuristic; invalid means stale', () => {
  const date = 'Sat, 28 Nov 2026 10:00:00 GMT';
  assert.equal(freshnessLifetime(200, { 'cache-control': 's-maxage=10, max-age=99' }, opts), 10);
  assert.equal(freshnessLifetime(200, { 'cache-control': 'max-age=99' }, opts), 99);
  assert.equal(freshnessLifetime(200, { 'cache-control': 'max-age=abc' }, opts), 0);
  assert.equal(freshnessLifetime(200, { date, expires: 'Sat, 28 Nov 2026 10:01:00 GMT' }, opts), 60);
  assert.equal(freshnessLifetime(200, { date, expires: 'garbage' }, opts), 0);
  // Heuristic: 10% of 10000 s since Last-Modified.
  assert.equal(
    freshnessLifetime(200, { date, 'last-modified': 'Sat, 28 Nov 2026 07:13:20 GMT' }, opts),
    1000,
  );
  assert.equal(freshnessLifetime(302, { date, 'last-modified': 'Sat, 28 Nov 2026 07:13:20 GMT' }, opts), 0);
  // CDN-Cache-Control replaces Cache-Control and Expires for this cache.
  assert.equal(
    freshnessLifetime(200, { 'cache-control': 'max-age=5', 'cdn-cache-control': 'max-age=500' }, opts),
    500,
  );
  assert.equal(
    freshnessLifetime(
      200,
      { 'cache-control': 'max-age=5', 'cdn-cache-control': 'max-age=500' },
      {
        ...opts,
        cdnCacheControl: false,
      },
    ),
    5,
  );
});

test('age: the larger of apparent age and Age plus the request time (§4.2.3)', () => {
  const now = Date.parse('Sat, 28 Nov 2026 10:00:10 GMT');
  assert.equal(initialAge({ date: 'Sat, 28 Nov 2026 10:00:00 GMT' }, now - 1000, now), 10);
  assert.equal(initialAge({ age: '100', date: 'Sat, 28 Nov 2026 10:00:10 GMT' }, now - 2000, now), 102);
});

test('storable: the reasons, and must-understand overriding no-store', () => {
  const why = (status: number, h: Record<string, string>, req: Record<string, string> = {}, method = 'GET') =>
    whyNotStorable(method, req, status, h, opts);
  assert.equal(why(200, { 'cache-control': 'max-age=1' }), null);
  assert.equal(why(200, { 'cache-control': 'max-age=1' }, {}, 'POST'), 'method');
  assert.equal(why(200, { 'cache-control': 'no-store, max-age=1' }), 'no-store');
  assert.equal(why(200, { 'cache-control': 'no-store, must-understand, max-age=1' }), null);
  assert.equal(why(299, { 'cache-control': 'must-understand, max-age=1' }), 'must-understand');
  assert.equal(why(206, { 'cache-control': 'max-age=1' }), 'status');
  assert.equal(why(200, { 'cache-control': 'private' }), 'private');
  assert.equal(why(200, { 'cache-control': 'private="x-user", max-age=9' }), null);
  assert.equal(why(200, { 'cache-control': 'max-age=1' }, { authorization: 'Basic x' }), 'authorization');
  assert.equal(why(200, { 'cache-control': 's-maxage=1' }, { authorization: 'Basic x' }), null);
  assert.equal(why(200, { 'cache-control': 'max-age=1', vary: 'a, *' }), 'vary-star');
  assert.equal(why(200, { 'cache-control': 'max-age=1', 'set-cookie': 'a=b' }), 'set-cookie');
  assert.equal(why(200, {}), 'no-freshness');
  assert.equal(why(200, { etag: '"x"' }), null); // no freshness, but validatable
  assert.equal(why(500, { 'cache-control': 'max-age=10' }), 'status');
  assert.equal(
    why(200, { 'cache-control': 'max-age=1' }, { 'cache-control': 'no-store' }),
    'request-no-store',
  );
});

const f = (over: Partial<Freshness> = {}): Freshness => ({
  responseTime: 1_000_000,
  initialAge: 0,
  lifetime: 60,
  staleWhileRevalidate: 0,
  staleIfError: 0,
  noCache: false,
  mustRevalidate: false,
  ...over,
});
const at = (s: number) => 1_000_000 + s * 1000;
const cc = parseCacheControl;

test('reuse: fresh, stale, the request directives, stale-while-revalidate, must-revalidate', () => {
  assert.equal(reuse(f(), cc(''), false, at(10)), 'fresh');
  assert.equal(reuse(f(), cc(''), false, at(61)), 'revalidate');
  assert.equal(reuse(f(), cc('no-cache'), false, at(1)), 'revalidate');
  assert.equal(reuse(f(), cc(''), true, at(1)), 'revalidate'); // Pragma: no-cache
  assert.equal(reuse(f(), cc('max-age=5'), false, at(10)), 'revalidate');
  assert.equal(reuse(f(), cc('min-fresh=55'), false, at(10)), 'revalidate');
  assert.equal(reuse(f(), cc('min-fresh=10'), false, at(10)), 'fresh');
  assert.equal(reuse(f({ noCache: true }), cc(''), false, at(1)), 'revalidate');
  assert.equal(reuse(f(), cc('max-stale'), false, at(1000)), 'stale-ok');
  assert.equal(reuse(f(), cc('max-stale=10'), false, at(65)), 'stale-ok');
  assert.equal(reuse(f(), cc('max-stale=10'), false, at(75)), 'revalidate');
  assert.equal(reuse(f({ mustRevalidate: true }), cc('max-stale'), false, at(61)), 'revalidate');
  assert.equal(reuse(f({ staleWhileRevalidate: 30 }), cc(''), false, at(80)), 'stale-ok');
  assert.equal(reuse(f({ staleWhileRevalidate: 30 }), cc(''), false, at(95)), 'revalidate');
  assert.equal(currentAge(f({ initialAge: 5 }), at(10)), 15);
});

test("stale-if-error: the response's or the request's window; never with must-revalidate", () => {
  assert.equal(staleIfErrorAllows(f({ staleIfError: 100 }), cc(''), at(120)), true);
  assert.equal(staleIfErrorAllows(f({ staleIfError: 100 }), cc(''), at(200)), false);
  assert.equal(staleIfErrorAllows(f(), cc('stale-if-error=300'), at(200)), true);
  assert.equal(staleIfErrorAllows(f({ staleIfError: 100, mustRevalidate: true }), cc(''), at(61)), false);
});

test('Vary: names sorted and lower case, * is null, values normalised', () => {
  assert.deepEqual(varyNames('Accept-Language, accept-encoding'), ['accept-encoding', 'accept-language']);
  assert.equal(varyNames('a, *'), null);
  assert.equal(varyValue('accept-encoding', 'gzip, br;q=0.5, zstd;q=0, x-gzip'), 'br,gzip');
  assert.equal(varyValue('accept-language', 'EN-us , fr'), 'en-us,fr');
  assert.equal(varyValue('x-custom', 'A , B'), 'A,B');
  assert.equal(varyKey(['accept-language'], { 'accept-language': 'de' }), 'accept-language:de\n');
  assert.notEqual(varyKey(['x'], {}), varyKey(['x'], { x: '' }) + 'y');
});

test('stored headers drop hop-by-hop, connection-listed and qualified private / no-cache fields', () => {
  const s = storedHeaders(
    {
      connection: 'x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      'cache-control': 'no-cache="x-secret", max-age=9',
      'x-secret': 's',
      'x-kept': 'k',
      age: '3',
    },
    opts,
  );
  assert.deepEqual(Object.keys(s).sort(), ['cache-control', 'x-kept']);
});

test('a 304 identifies the entry by strong ETag or Last-Modified, and updates all but the content fields', () => {
  const stored = { etag: '"a"', 'content-length': '10', 'x-v': '1' };
  assert.equal(notModifiedMatches(stored, { etag: '"a"' }), true);
  assert.equal(notModifiedMatches(stored, { etag: '"b"' }), false);
  assert.equal(notModifiedMatches(stored, {}), true);
  assert.equal(
    notModifiedMatches(
      { 'last-modified': 'Sat, 28 Nov 2026 10:00:00 GMT' },
      { 'last-modified': 'Fri, 27 Nov 2026 10:00:00 GMT' },
    ),
    false,
  );
  const u = updateHeaders(stored, { 'content-length': '0', 'x-v': '2', etag: '"a"' }, opts);
  assert.equal(u['content-length'], '10');
  assert.equal(u['x-v'], '2');
});
