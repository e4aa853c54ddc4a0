// RFC 9110 §14 (range requests) through src/http/range.ts: the Range grammar, satisfiability,
// abuse defences, Content-Range values and the multipart/byteranges body, which is parsed back
// here by a small parser of its own. Examples marked "RFC" are the RFC's own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  contentRange,
  multipartByteranges,
  parseRange,
  type RangeResult,
  unsatisfiedRange,
} from '../../src/http/range.ts';

const ranges = (...pairs: [number, number][]): RangeResult => ({
  kind: 'ranges',
  ranges: pairs.map(([start, end]) => ({ start, end })),
});
const NONE: RangeResult = { kind: 'none' };
const UNSAT: RangeResult = { kind: 'unsatisfiable' };

test('RFC §14.1.2 examples, against a representation of 10000 bytes', () => {
  assert.deepEqual(parseRange('bytes=0-499', 10000), ranges([0, 499])); // the first 500 bytes
  assert.deepEqual(parseRange('bytes=500-999', 10000), ranges([500, 999])); // the second 500 bytes
  assert.deepEqual(parseRange('bytes=-500', 10000), ranges([9500, 9999])); // the final 500 bytes
  assert.deepEqual(parseRange('bytes=9500-', 10000), ranges([9500, 9999]));
  assert.deepEqual(parseRange('bytes=0-0,-1', 10000), ranges([0, 0], [9999, 9999])); // first and last
  // "legal but not canonical" specifications of the second 500 bytes: coalesced to one range
  assert.deepEqual(parseRange('bytes=500-600,601-999', 10000), ranges([500, 999]));
  assert.deepEqual(parseRange('bytes=500-700,601-999', 10000), ranges([500, 999]));
});

test('RFC §15.3.7.2 example ranges of an 8000-byte representation', () => {
  assert.deepEqual(parseRange('bytes=500-999,7000-7999', 8000), ranges([500, 999], [7000, 7999]));
});

test('no header, another unit: none', () => {
  assert.deepEqual(parseRange(undefined, 100), NONE);
  assert.deepEqual(parseRange('items=0-5', 100), NONE);
  assert.deepEqual(parseRange('byte=0-5', 100), NONE);
  assert.deepEqual(parseRange('bytesx=0-5', 100), NONE);
  assert.deepEqual(parseRange('none', 100), NONE);
});

test('the unit is case-insensitive; OWS around commas, after "=" (erratum 7306), and around the value', () => {
  assert.deepEqual(parseRange('BYTES=0-9', 100), ranges([0, 9]));
  assert.deepEqual(parseRange('Bytes=0-9', 100), ranges([0, 9]));
  assert.deepEqual(parseRange('bytes=0-9 , 50-59', 1000), ranges([0, 9], [50, 59]));
  assert.deepEqual(parseRange('bytes=0-9,\t50-59', 1000), ranges([0, 9], [50, 59]));
  assert.deepEqual(parseRange('bytes= 0-9', 100), ranges([0, 9]));
  assert.deepEqual(parseRange('  bytes=0-9  ', 100), ranges([0, 9]));
  // empty list elements are allowed (§5.6.1.2)
  assert.deepEqual(parseRange('bytes=,0-9,,', 100), ranges([0, 9]));
  assert.deepEqual(parseRange(`bytes=${','.repeat(10_000)}0-9`, 100), ranges([0, 9]));
  // leading zeros are digits
  assert.deepEqual(parseRange('bytes=0005-0010', 100), ranges([5, 10]));
});

test('malformed: the whole header is ignored (none)', () => {
  for (const bad of [
    'bytes=',
    'bytes=,',
    `bytes=${','.repeat(10_000)}`,
    'bytes',
    '=0-1',
    'bytes0-1',
    'bytes =0-1', // no OWS before "="
    'bytes=-',
    'bytes=--5',
    'bytes=-5-',
    'bytes=5-1', // last-pos below first-pos (§14.1.1)
    'bytes=010-9',
    'bytes=0-1,5-1', // one invalid range-spec makes the set invalid
    'bytes=1-2-3',
    'bytes=0-1 2-3', // no comma
    'bytes=0-1;x',
    'bytes=0 -1', // no whitespace inside a range-spec
    'bytes=0- 1',
    'bytes=a-b',
    'bytes=0x10-20',
    'bytes=+5-10',
    'bytes=-+5',
    'bytes=1.5-2',
    'bytes=1e3-2000',
    'bytes=\u0661-\u0662', // non-ASCII digits
    'bytes=0-1\n',
    'garbage',
    '',
  ]) {
    assert.deepEqual(parseRange(bad, 10000), NONE, JSON.stringify(bad));
  }
});

test('unsatisfiable: every range starts at or past the end, or is a zero-length suffix', () => {
  assert.deepEqual(parseRange('bytes=10000-', 10000), UNSAT);
  assert.deepEqual(parseRange('bytes=10000-20000', 10000), UNSAT);
  assert.deepEqual(parseRange('bytes=-0', 10000), UNSAT);
  assert.deepEqual(parseRange('bytes=-0,20000-,10000-10001', 10000), UNSAT);
  assert.equal(unsatisfiedRange(10000), 'bytes */10000');
});

test('an unsatisfiable range among satisfiable ones is dropped', () => {
  assert.deepEqual(parseRange('bytes=0-1,20000-', 10000), ranges([0, 1]));
  assert.deepEqual(parseRange('bytes=-0,9000-', 10000), ranges([9000, 9999]));
});

test('ranges are clipped to the representation', () => {
  assert.deepEqual(parseRange('bytes=9000-20000', 10000), ranges([9000, 9999]));
  assert.deepEqual(parseRange('bytes=-20000', 10000), ranges([0, 9999]));
  assert.deepEqual(parseRange('bytes=0-', 10000), ranges([0, 9999]));
  assert.deepEqual(parseRange('bytes=9999-9999', 10000), ranges([9999, 9999]));
});

test('numerals beyond Number.MAX_SAFE_INTEGER do not fail (§14.1.2)', () => {
  const huge = '9'.repeat(400);
  assert.deepEqual(parseRange(`bytes=0-${huge}`, 10000), ranges([0, 9999]));
  assert.deepEqual(parseRange(`bytes=${huge}-`, 10000), UNSAT);
  assert.deepEqual(parseRange(`bytes=${huge}-${huge}`, 10000), UNSAT);
  assert.deepEqual(parseRange(`bytes=-${huge}`, 10000), ranges([0, 9999]));
  assert.deepEqual(parseRange(`bytes=${huge}-1`, 10000), NONE); // last-pos below first-pos
  // compared exactly, not as doubles: 2^53 + 1 > 2^53, although both are the same double
  assert.deepEqual(parseRange('bytes=9007199254740993-9007199254740992', 10000), NONE);
  assert.deepEqual(parseRange('bytes=9007199254740992-9007199254740993', 10000), UNSAT);
  assert.deepEqual(parseRange(`bytes=0-${huge},${huge}-`, 10000), ranges([0, 9999]));
  // the largest size there is
  const max = Number.MAX_SAFE_INTEGER;
  assert.deepEqual(parseRange('bytes=-1', max), ranges([max - 1, max - 1]));
  assert.deepEqual(parseRange(`bytes=${max - 1}-${huge}`, max), ranges([max - 1, max - 1]));
});

test('size 0: int-ranges are unsatisfiable; a non-zero suffix is satisfiable but empty, so ignored', () => {
  assert.deepEqual(parseRange('bytes=0-', 0), UNSAT);
  assert.deepEqual(parseRange('bytes=0-0', 0), UNSAT);
  assert.deepEqual(parseRange('bytes=5-10', 0), UNSAT);
  assert.deepEqual(parseRange('bytes=-0', 0), UNSAT);
  assert.deepEqual(parseRange('bytes=-5', 0), NONE);
  assert.deepEqual(parseRange('bytes=0-,-5', 0), NONE);
  assert.deepEqual(parseRange('bytes=5-1', 0), NONE); // malformed still wins
  assert.equal(unsatisfiedRange(0), 'bytes */0');
});

test('size 1', () => {
  assert.deepEqual(parseRange('bytes=0-0', 1), ranges([0, 0]));
  assert.deepEqual(parseRange('bytes=-1', 1), ranges([0, 0]));
  assert.deepEqual(parseRange('bytes=-5', 1), ranges([0, 0]));
  assert.deepEqual(parseRange('bytes=0-', 1), ranges([0, 0]));
  assert.deepEqual(parseRange('bytes=1-', 1), UNSAT);
});

test('coalescing: overlapping and adjacent ranges merge, parts keep the order of first request', () => {
  assert.deepEqual(parseRange('bytes=0-99,100-199', 10000), ranges([0, 199])); // adjacent
  assert.deepEqual(parseRange('bytes=0-99,101-199', 10000), ranges([0, 99], [101, 199])); // a 1-byte gap
  assert.deepEqual(parseRange('bytes=0-999,100-199', 10000), ranges([0, 999])); // enclosed
  assert.deepEqual(parseRange('bytes=0-99,0-99,0-99', 10000), ranges([0, 99])); // repeated
  assert.deepEqual(parseRange('bytes=-100,9000-', 10000), ranges([9000, 9999])); // suffix inside
  // out of order stays out of order (§15.3.7.2 SHOULD)
  assert.deepEqual(parseRange('bytes=9000-9099,0-99', 10000), ranges([9000, 9099], [0, 99]));
  // a merged part takes the place of its earliest range-spec
  assert.deepEqual(parseRange('bytes=5000-5099,50-150,0-99', 10000), ranges([5000, 5099], [0, 150]));
  assert.deepEqual(parseRange('bytes=0-99,5000-5099,150-250,90-160', 10000), ranges([0, 250], [5000, 5099]));
});

test('abuse: more than maxRanges range-specs are ignored', () => {
  const specs = (n: number) => Array.from({ length: n }, (_, k) => `${k * 1000}-${k * 1000 + 9}`).join(',');
  const sixteen = parseRange(`bytes=${specs(16)}`, 1_000_000);
  assert.equal(sixteen.kind, 'ranges');
  assert.equal(sixteen.kind === 'ranges' && sixteen.ranges.length, 16);
  assert.deepEqual(parseRange(`bytes=${specs(17)}`, 1_000_000), NONE);
  assert.deepEqual(parseRange(`bytes=${specs(3)}`, 1_000_000, { maxRanges: 2 }), NONE);
  assert.equal(parseRange(`bytes=${specs(3)}`, 1_000_000, { maxRanges: 3 }).kind, 'ranges');
  assert.deepEqual(parseRange('bytes=0-1', 100, { maxRanges: 0 }), NONE); // range support off
  // counted as written, even when they would coalesce or be unsatisfiable
  assert.deepEqual(parseRange(`bytes=${'0-,'.repeat(17)}`, 1000), NONE);
  assert.deepEqual(parseRange(`bytes=${'5000-,'.repeat(17)}`, 1000), NONE);
  // empty elements are not range-specs
  assert.equal(parseRange(`bytes=${',,,'.repeat(100)}0-1`, 1000).kind, 'ranges');
});

test('abuse: a huge field is ignored quickly', () => {
  const field = `bytes=${'0-0,'.repeat(200_000)}`;
  const t0 = performance.now();
  assert.deepEqual(parseRange(field, 1000), NONE);
  assert.ok(performance.now() - t0 < 200);
});

test('abuse (Apache CVE-2011-3192): overlapping ranges never add up to more than the representation', () => {
  // the attack's shape within the range cap: every range overlaps the others
  const overlapping = `bytes=0-,${Array.from({ length: 15 }, (_, k) => `5-${k + 5}`).join(',')}`;
  assert.deepEqual(parseRange(overlapping, 10000), ranges([0, 9999]));
  const nested = `bytes=${Array.from({ length: 16 }, (_, k) => `${k}-${9999 - k}`).join(',')}`;
  assert.deepEqual(parseRange(nested, 10000), ranges([0, 9999]));
  // for every accepted answer, the parts are disjoint and enclose at most `size` bytes
  for (const field of [overlapping, nested, 'bytes=0-0,-1', 'bytes=9000-9099,0-99,50-5000']) {
    const r = parseRange(field, 10000);
    assert.equal(r.kind, 'ranges');
    if (r.kind !== 'ranges') continue;
    const sorted = [...r.ranges].sort((a, b) => a.start - b.start);
    let total = 0;
    for (let k = 0; k < sorted.length; k++) {
      total += sorted[k]!.end - sorted[k]!.start + 1;
      if (k > 0) assert.ok(sorted[k]!.start > sorted[k - 1]!.end + 1, field);
    }
    assert.ok(total <= 10000, field);
  }
});

test('abuse: several small parts that would cost more than the whole representation are ignored', () => {
  // 3 bytes + 3 * 80 bytes of part overhead > 100 bytes: the full 200 is smaller
  assert.deepEqual(parseRange('bytes=0-0,2-2,4-4', 100), NONE);
  assert.deepEqual(parseRange('bytes=0-0,-1', 100), NONE);
  // the same request of a larger representation is served
  assert.deepEqual(parseRange('bytes=0-0,2-2,4-4', 10000), ranges([0, 0], [2, 2], [4, 4]));
  // a single range is never affected
  assert.deepEqual(parseRange('bytes=0-0', 100), ranges([0, 0]));
  assert.deepEqual(parseRange('bytes=0-0,1-1,2-2', 100), ranges([0, 2])); // coalesced into one
  // and the multipart response stays within a small constant of the 200
  for (const size of [100, 200, 500, 1000, 10000]) {
    const r = parseRange(
      `bytes=${Array.from({ length: 16 }, (_, k) => `${k * 10}-${k * 10}`).join(',')}`,
      size,
    );
    if (r.kind !== 'ranges' || r.ranges.length === 1) continue;
    const m = multipartByteranges(r.ranges, size, 'application/octet-stream');
    assert.ok(m.length <= size + 16 * 100, `size ${size}: ${m.length}`);
  }
});

test('parseRange rejects a size that is not a byte count', () => {
  assert.throws(() => parseRange('bytes=0-1', -1), RangeError);
  assert.throws(() => parseRange('bytes=0-1', 1.5), RangeError);
  assert.throws(() => parseRange('bytes=0-1', Number.NaN), RangeError);
  assert.throws(() => parseRange(undefined, 2 ** 53), RangeError);
});

test('contentRange and unsatisfiedRange (§14.4)', () => {
  assert.equal(contentRange(0, 99, 1000), 'bytes 0-99/1000');
  assert.equal(contentRange(42, 42, 43), 'bytes 42-42/43');
  // RFC §14.4 examples
  assert.equal(contentRange(42, 1233, 1234), 'bytes 42-1233/1234');
  assert.equal(unsatisfiedRange(1234), 'bytes */1234');
  assert.throws(() => contentRange(5, 4, 10), RangeError);
  assert.throws(() => contentRange(0, 10, 10), RangeError);
  assert.throws(() => contentRange(-1, 1, 10), RangeError);
  assert.throws(() => contentRange(0, 0, 0), RangeError);
  assert.throws(() => unsatisfiedRange(-1), RangeError);
});

// ---- multipart/byteranges ---------------------------------------------------------------------

/** A representation whose every byte value occurs, CR LF and "-" included. */
function representation(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = (k * 7 + (k >> 8)) & 0xff;
  return b;
}

/** What the server would send: each head, the bytes it announces, then the tail. */
function body(m: ReturnType<typeof multipartByteranges>, rep: Buffer): Buffer {
  const chunks: Buffer[] = [];
  for (const p of m.parts) chunks.push(p.head, rep.subarray(p.start, p.end + 1));
  chunks.push(m.tail);
  return Buffer.concat(chunks);
}

interface Part {
  headers: Record<string, string>;
  data: Buffer;
}

/**
 * A multipart parser written from RFC 2046 §5.1.1 alone: the boundary from the Content-Type, then
 * dash-boundary, body parts delimited by CRLF "--" boundary, a close-delimiter with "--".
 */
function parseMultipart(contentType: string, payload: Buffer): { parts: Part[]; epilogue: Buffer } {
  const m = /^multipart\/byteranges;\s*boundary=(?:"([^"]+)"|([^\s;]+))$/.exec(contentType);
  assert.ok(m, `content type ${contentType}`);
  const boundary = m[1] ?? m[2]!;
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  // no preamble here: the payload starts with the dash-boundary
  assert.ok(payload.subarray(0, dash.length).equals(dash), 'starts with the dash-boundary');
  let pos = dash.length;
  const parts: Part[] = [];
  for (;;) {
    // after a delimiter: "--" closes, CRLF opens a part
    if (payload.subarray(pos, pos + 2).toString('latin1') === '--') {
      return { parts, epilogue: payload.subarray(pos + 2) };
    }
    assert.equal(
      payload.subarray(pos, pos + 2).toString('latin1'),
      '\r\n',
      `CRLF after the boundary at ${pos}`,
    );
    pos += 2;
    const headEnd = payload.indexOf('\r\n\r\n', pos, 'latin1');
    assert.ok(headEnd >= 0, 'part headers end');
    const headers: Record<string, string> = {};
    for (const line of payload.subarray(pos, headEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      assert.ok(colon > 0, `header line ${line}`);
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const next = payload.indexOf(delimiter, headEnd + 4);
    assert.ok(next >= 0, 'a delimiter follows the part');
    parts.push({ headers, data: payload.subarray(headEnd + 4, next) });
    pos = next + delimiter.length;
  }
}

test('multipart/byteranges: two ranges (the RFC §15.3.7.2 example), parsed back', () => {
  const size = 8000;
  const rep = representation(size);
  const r = parseRange('bytes=500-999,7000-7999', size);
  assert.equal(r.kind, 'ranges');
  if (r.kind !== 'ranges') return;
  const m = multipartByteranges(r.ranges, size, 'application/pdf', 'THIS_STRING_SEPARATES');
  assert.equal(m.contentType, 'multipart/byteranges; boundary=THIS_STRING_SEPARATES');
  const payload = body(m, rep);
  assert.equal(m.length, payload.length, 'Content-Length is the real byte count');
  const { parts, epilogue } = parseMultipart(m.contentType, payload);
  assert.equal(parts.length, 2);
  assert.deepEqual(parts[0]!.headers, {
    'content-type': 'application/pdf',
    'content-range': 'bytes 500-999/8000',
  });
  assert.deepEqual(parts[1]!.headers, {
    'content-type': 'application/pdf',
    'content-range': 'bytes 7000-7999/8000',
  });
  assert.ok(parts[0]!.data.equals(rep.subarray(500, 1000)));
  assert.ok(parts[1]!.data.equals(rep.subarray(7000, 8000)));
  assert.equal(epilogue.toString('latin1'), '\r\n');
  // the exact framing
  assert.equal(
    m.parts[0]!.head.toString('latin1'),
    '--THIS_STRING_SEPARATES\r\nContent-Type: application/pdf\r\nContent-Range: bytes 500-999/8000\r\n\r\n',
  );
  assert.equal(
    m.parts[1]!.head.toString('latin1'),
    '\r\n--THIS_STRING_SEPARATES\r\nContent-Type: application/pdf\r\nContent-Range: bytes 7000-7999/8000\r\n\r\n',
  );
  assert.equal(m.tail.toString('latin1'), '\r\n--THIS_STRING_SEPARATES--\r\n');
});

test('multipart/byteranges: random boundary, out-of-order parts, single-byte parts, no Content-Type', () => {
  const size = 10000;
  const rep = representation(size);
  const r = parseRange('bytes=9000-9099,0-0,-1,4000-4999', size);
  assert.deepEqual(r, ranges([9000, 9099], [0, 0], [9999, 9999], [4000, 4999]));
  if (r.kind !== 'ranges') return;
  const m = multipartByteranges(r.ranges, size, undefined);
  assert.match(m.contentType, /^multipart\/byteranges; boundary=[0-9a-f]{24}$/);
  assert.notEqual(multipartByteranges(r.ranges, size, undefined).contentType, m.contentType);
  const payload = body(m, rep);
  assert.equal(m.length, payload.length);
  const { parts } = parseMultipart(m.contentType, payload);
  assert.equal(parts.length, 4);
  r.ranges.forEach(({ start, end }, k) => {
    assert.deepEqual(parts[k]!.headers, { 'content-range': `bytes ${start}-${end}/${size}` });
    assert.ok(parts[k]!.data.equals(rep.subarray(start, end + 1)), `part ${k}`);
  });
});

test('multipart/byteranges: a Content-Type with parameters and latin1; a boundary that needs quoting', () => {
  const size = 5000;
  const rep = representation(size);
  const type = 'text/plain; charset=iso-8859-1; title="caf\u00e9"';
  const m = multipartByteranges(
    [
      { start: 10, end: 19 },
      { start: 4000, end: 4999 },
    ],
    size,
    type,
    "a b:c/d=e?f'(g)",
  );
  assert.equal(m.contentType, `multipart/byteranges; boundary="a b:c/d=e?f'(g)"`);
  const payload = body(m, rep);
  assert.equal(m.length, payload.length);
  const { parts } = parseMultipart(m.contentType, payload);
  assert.equal(parts[0]!.headers['content-type'], type);
  assert.ok(parts[0]!.data.equals(rep.subarray(10, 20)));
  assert.ok(parts[1]!.data.equals(rep.subarray(4000, 5000)));
});

test('multipart/byteranges rejects what it cannot frame', () => {
  const one = [{ start: 0, end: 0 }];
  assert.throws(() => multipartByteranges([], 10, undefined), RangeError);
  assert.throws(() => multipartByteranges([{ start: 5, end: 10 }], 10, undefined), RangeError);
  assert.throws(() => multipartByteranges(one, 10, 'text/plain\r\nX-Injected: 1'), TypeError);
  assert.throws(() => multipartByteranges(one, 10, 'text/\u0100'), TypeError);
  for (const bad of [
    '',
    'x'.repeat(71),
    'ends with space ',
    'quote"',
    'semi;colon',
    'back\\slash',
    'caf\u00e9',
  ]) {
    assert.throws(() => multipartByteranges(one, 10, undefined, bad), TypeError, JSON.stringify(bad));
  }
  assert.doesNotThrow(() => multipartByteranges(one, 10, undefined, 'x'.repeat(70)));
});
