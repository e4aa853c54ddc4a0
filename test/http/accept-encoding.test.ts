// Accept-Encoding negotiation (RFC 9110 §12.5.3): q-values, `*`, identity, ties in the server's
// order, case, and headers that are partly or wholly garbage.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EncodingNegotiator, negotiate, normalizeAcceptEncoding } from '../../src/http/acceptEncoding.ts';

const ALL = ['zstd', 'br', 'gzip'] as const;

/** [header, offered, expected] */
function check(cases: [string | undefined, readonly string[], string | null][]): void {
  for (const [header, offered, expected] of cases)
    assert.equal(
      negotiate(header, offered),
      expected,
      `${JSON.stringify(header)} offered ${offered.join(',')}`,
    );
}

test('no header or an empty one: identity', () => {
  check([
    [undefined, ALL, null],
    ['', ALL, null],
    ['   ', ALL, null],
    [',', ALL, null],
    [' , ,', ALL, null],
  ]);
  assert.equal(negotiate(null, ALL), null);
});

test('equal q: the server order decides, whatever the client order', () => {
  check([
    ['gzip, deflate, br, zstd', ALL, 'zstd'],
    ['gzip, br', ALL, 'br'],
    ['gzip', ALL, 'gzip'],
    ['deflate', ALL, null],
    ['gzip, br', ['gzip', 'br'], 'gzip'],
    ['br;q=0.5, gzip;q=0.5', ['gzip', 'br'], 'gzip'],
    ['br;q=0.5, gzip;q=0.5', ALL, 'br'],
  ]);
});

test('the highest q wins over the server order', () => {
  check([
    ['zstd;q=0.1, br;q=0.9, gzip;q=0.5', ALL, 'br'],
    ['zstd;q=0.5, gzip', ALL, 'gzip'],
    ['gzip;q=1.0, br;q=0.999', ALL, 'gzip'],
    ['gzip;q=0.001', ALL, 'gzip'],
    ['br;q=0.001, gzip;q=0.002', ALL, 'gzip'],
  ]);
});

test('q=0 is "not acceptable"', () => {
  check([
    ['gzip;q=0', ALL, null],
    ['gzip;q=0.000, br', ALL, 'br'],
    ['zstd;q=0, br;q=0, gzip;q=0', ALL, null],
    ['*;q=0', ALL, null],
  ]);
});

test('`*` covers the codings not listed, and only those', () => {
  check([
    ['*', ALL, 'zstd'],
    ['*;q=0.5, gzip', ALL, 'gzip'],
    ['*, zstd;q=0', ALL, 'br'],
    ['*;q=0, gzip', ALL, 'gzip'],
    ['*;q=0.2, br;q=0.1', ALL, 'zstd'],
    ['gzip;q=0.1, *;q=0.3', ['gzip'], 'gzip'],
  ]);
});

test('identity: refused or preferred only when listed explicitly', () => {
  check([
    ['identity', ALL, null],
    ['identity;q=0', ALL, null],
    ['identity;q=0, gzip', ALL, 'gzip'],
    ['gzip, identity;q=0.5', ALL, 'gzip'],
    ['gzip;q=0.5, identity', ALL, null],
    ['gzip;q=0.5, identity;q=0.5', ALL, 'gzip'],
    ['gzip;q=0.5', ALL, 'gzip'],
    ['identity;q=1, *;q=0.9', ALL, null],
    ['*;q=0', ALL, null],
  ]);
});

test('codings and q are case-insensitive; x-gzip is gzip', () => {
  check([
    ['GZIP', ALL, 'gzip'],
    ['Br;Q=0.5, gZip;q=0.4', ALL, 'br'],
    ['x-gzip', ALL, 'gzip'],
    ['X-GZIP;q=0.9, br;q=0.8', ALL, 'gzip'],
    ['*;Q=0.3', ALL, 'zstd'],
  ]);
  // Offered names are compared lower case.
  assert.equal(new EncodingNegotiator(['GZIP']).pick('gzip'), 'gzip');
});

test('whitespace around members, semicolons and values', () => {
  check([
    ['  gzip ;  q=0.5 ,\tbr ; q=0.6  ', ALL, 'br'],
    ['gzip;q=0.5;q=0.9', ALL, 'gzip'],
    ['gzip ; level=9 ; q=1, br;q=0.5', ALL, 'gzip'],
  ]);
});

test('a malformed member is ignored, and the rest of the header still counts', () => {
  check([
    // q out of range or badly written: the member is dropped.
    ['gzip;q=2', ALL, null],
    ['gzip;q=1.5, br', ALL, 'br'],
    ['gzip;q=0.5000, br;q=0.1', ALL, 'br'],
    ['gzip;q=abc', ALL, null],
    ['gzip;q=, br;q=0.1', ALL, 'br'],
    ['gzip;q=-1', ALL, null],
    ['gzip;q=1.001', ALL, null],
    ['gzip;q=.5', ALL, null],
    ['gzip;q=0x1', ALL, null],
    // A dropped `gzip;q=0` does not refuse gzip: it is as if it were absent (then `*` counts).
    ['gzip;q=0.0.0, *', ALL, 'zstd'],
    // A coding that is not a token.
    ['gz"ip, br', ALL, 'br'],
    ['g zip', ALL, null],
    ['gzip/1, br;q=0.3', ALL, 'br'],
    ['@@@;;;===,,,', ALL, null],
    [';q=1', ALL, null],
    ['\u00e9gzip, gzip;q=0.2', ALL, 'gzip'],
  ]);
});

test('the first member naming a coding counts', () => {
  check([
    ['gzip;q=0, gzip', ALL, null],
    ['gzip, gzip;q=0', ALL, 'gzip'],
    ['x-gzip;q=0, gzip', ALL, null],
    ['*;q=0, *', ALL, null],
  ]);
});

test('repeated headers arrive as a list', () => {
  assert.equal(negotiate(['gzip;q=0.5', 'br'], ALL), 'br');
  assert.equal(new EncodingNegotiator(ALL).pick(['gzip;q=0.5', 'zstd;q=0.6']), 'zstd');
});

test('normalizeAcceptEncoding: one key per answer', () => {
  const keys = [
    'gzip, deflate, br, zstd',
    'zstd',
    '*',
    'ZSTD;q=0.9, gzip;q=0.1',
    'br;q=0.5, gzip;q=0.4',
    'BR',
    'gzip',
    'x-gzip',
    'gzip;q=1, br;q=0',
    'identity',
    '',
    'gzip;q=0',
    'deflate',
    undefined,
  ].map((h) => normalizeAcceptEncoding(h, ALL));
  assert.deepEqual(keys, [
    'zstd',
    'zstd',
    'zstd',
    'zstd',
    'br',
    'br',
    'gzip',
    'gzip',
    'gzip',
    'identity',
    'identity',
    'identity',
    'identity',
    'identity',
  ]);
  // With another offered list, the same header can mean another answer.
  assert.equal(normalizeAcceptEncoding('zstd, gzip', ['gzip']), 'gzip');
  assert.equal(normalizeAcceptEncoding('zstd', ['gzip']), 'identity');
});

test('EncodingNegotiator answers as negotiate does, for many values and long ones (remembered or not)', () => {
  const n = new EncodingNegotiator(ALL);
  for (let i = 0; i < 2000; i++)
    assert.equal(n.pick(`gzip;q=0.${i % 1000}, x-${i}`), i % 1000 === 0 ? null : 'gzip');
  assert.equal(n.pick('br, gzip'), 'br');
  assert.equal(n.pick('br, gzip'), 'br');
  const long = `${'x,'.repeat(500)}zstd`;
  assert.equal(n.pick(long), 'zstd');
  assert.equal(n.pick(undefined), null);
});
