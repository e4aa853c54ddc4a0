// Range requests, RFC 9110 §14: the Range header against a representation of known size
// (§14.1.2, §14.2), Content-Range values (§14.4) and the multipart/byteranges framing (§14.6) of a
// 206 with several parts (§15.3.7.2). Pure: no I/O. What a caller does with the result:
//   'none'          send the full 200, as if there were no Range (Accept-Ranges: bytes may be added)
//   'unsatisfiable' send 416 with Content-Range: unsatisfiedRange(size) (§15.5.17)
//   one range       send 206 with Content-Range: contentRange(start, end, size) and those bytes
//   several ranges  send 206 with the framing of multipartByteranges
// Range applies to GET only and after the preconditions (§13.2.2, §14.2): also the caller's part.

import { randomBytes } from 'node:crypto';
import { TOKEN } from '../http1/bytes.ts';

/** Byte offsets, both inclusive (§14.1.2). */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeResult =
  | { kind: 'none' }
  | { kind: 'unsatisfiable' }
  | { kind: 'ranges'; ranges: ByteRange[] };

export const DEFAULT_MAX_RANGES = 16;

/**
 * The per-part overhead of multipart/byteranges that §15.3.7.2 quotes ("around 80 bytes"), used
 * to decide when several parts would cost more than the whole representation.
 */
const PART_OVERHEAD = 80;

const NONE: RangeResult = { kind: 'none' };
const UNSATISFIABLE: RangeResult = { kind: 'unsatisfiable' };

interface Spec {
  /** int-range: first-pos; suffix-range: undefined. */
  first?: number;
  /** int-range: last-pos when present; suffix-range: suffix-length. Infinity when too large. */
  last?: number;
}

/**
 * A Range header against a representation of `size` bytes. 'none': no header, another unit, or a
 * malformed or abusive header that is ignored (the full 200 is sent).
 *
 * Grammar (§14.1.1, §14.2, with erratum 7306's OWS after "="):
 *   Range = range-unit "=" OWS range-set     range-set = 1#range-spec
 *   range-spec = int-range / suffix-range    int-range = first-pos "-" [ last-pos ]
 *   suffix-range = "-" suffix-length         positions and lengths: 1*DIGIT
 * The unit is case-insensitive (§14.1). Any invalid range-spec (bytes=5-1, bytes=-, garbage)
 * makes the whole field invalid (§14.1.1), and an invalid field is ignored rather than rejected
 * (§14.2 allows either; a 416 would tell the client the representation is too short, which is not
 * what is wrong).
 *
 * Abuse (§14.2, §17.15; Apache CVE-2011-3192, where "bytes=0-,5-0,5-1,..." made a small file
 * into a response of gigabytes; that exact field is already invalid here, 5-0 running backwards):
 * - more than `maxRanges` (default 16) range-specs as written: ignored, the same as nginx's
 *   max_ranges and Apache's MaxRanges. maxRanges 0 turns range support off.
 * - overlapping and adjacent ranges are coalesced (§15.3.7.2 allows it "regardless of the order"),
 *   so the parts never enclose more than `size` bytes in total, whatever the field asked for. The
 *   parts stay in the order of the earliest range-spec that fed each (§15.3.7.2's SHOULD).
 * - when several parts remain and their bytes plus the §15.3.7.2 overhead of about 80 bytes per
 *   part exceed `size`, the field is ignored: the full 200 is smaller than the 206, so a request
 *   for many tiny ranges of a small file cannot make the response many times the representation.
 *
 * Numerals beyond Number.MAX_SAFE_INTEGER do not fail (§14.1.2: recipients MUST anticipate large
 * numerals): such a first-pos is past any size (unsatisfiable), such a last-pos is clipped to
 * size - 1, such a suffix-length takes the whole representation.
 *
 * A size of 0: §14.1.2 says an int-range cannot be satisfied (its first-pos is not below 0), and
 * the only satisfiable form is a suffix-range with a non-zero length, which selects nothing. So:
 * 416 when nothing is satisfiable (§15.5.17); and a suffix-range that is satisfiable yet empty has
 * no Content-Range to describe it (incl-range needs first <= last), so then the field is ignored,
 * which §14.2 allows "when the selected representation has no content". On an empty
 * representation bytes=0- and bytes=-0 are 416, bytes=-5 is 'none'. (nginx: bytes=5- 416,
 * bytes=-5 200 as here, but bytes=0- 200 where this follows the RFC's satisfiability.)
 */
export function parseRange(
  header: string | undefined,
  size: number,
  opts?: { maxRanges?: number },
): RangeResult {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new RangeError(`size must be a safe integer >= 0: ${size}`);
  if (header === undefined) return NONE;
  const maxRanges = opts?.maxRanges ?? DEFAULT_MAX_RANGES;
  const specs = parseRangesSpecifier(header, maxRanges);
  if (specs === null) return NONE;

  const resolved: (ByteRange & { order: number })[] = [];
  let emptySuffix = false;
  for (let k = 0; k < specs.length; k++) {
    const { first, last } = specs[k]!;
    if (first === undefined) {
      // suffix-range: the last `last` bytes, the whole representation when it is shorter.
      if (last === 0) continue; // a suffix-length of zero is unsatisfiable (§14.1.2)
      if (size === 0) {
        emptySuffix = true;
        continue;
      }
      resolved.push({ start: last! >= size ? 0 : size - last!, end: size - 1, order: k });
    } else {
      if (first >= size) continue; // unsatisfiable on its own; the others may still be served
      resolved.push({ start: first, end: last === undefined || last >= size ? size - 1 : last, order: k });
    }
  }
  if (resolved.length === 0) return emptySuffix ? NONE : UNSATISFIABLE;

  const merged = coalesce(resolved);
  if (merged.length > 1) {
    let bytes = 0;
    for (const r of merged) bytes += r.end - r.start + 1;
    if (bytes + PART_OVERHEAD * merged.length > size) return NONE;
  }
  return { kind: 'ranges', ranges: merged.map(({ start, end }) => ({ start, end })) };
}

/** Overlapping and adjacent ranges become one; the result keeps the order of first request. */
function coalesce(ranges: (ByteRange & { order: number })[]): (ByteRange & { order: number })[] {
  const sorted = ranges.map((r) => ({ ...r })).sort((a, b) => a.start - b.start || a.end - b.end);
  const out: (ByteRange & { order: number })[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && r.start <= prev.end + 1) {
      if (r.end > prev.end) prev.end = r.end;
      if (r.order < prev.order) prev.order = r.order;
    } else {
      out.push(r);
    }
  }
  return out.sort((a, b) => a.order - b.order);
}

const isOWS = (c: number): boolean => c === 0x20 || c === 0x09;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/**
 * The byte range-specs of a Range value, or null when the field is to be ignored: another unit, a
 * syntax error, no range-spec, an int-range whose last-pos is below its first-pos, or more than
 * `maxRanges` range-specs (parsing stops there, so a huge field costs no more than that).
 */
function parseRangesSpecifier(value: string, maxRanges: number): Spec[] | null {
  let i = 0;
  let end = value.length;
  while (i < end && isOWS(value.charCodeAt(i))) i++;
  while (end > i && isOWS(value.charCodeAt(end - 1))) end--;
  const eq = value.indexOf('=', i);
  if (eq <= i || eq >= end) return null;
  for (let k = i; k < eq; k++) if (!TOKEN[value.charCodeAt(k)]) return null;
  // range-unit is case-insensitive (§14.1); an origin server MUST ignore a unit it does not know (§14.2).
  if (value.slice(i, eq).toLowerCase() !== 'bytes') return null;
  i = eq + 1;

  const specs: Spec[] = [];
  for (;;) {
    // Empty list elements are allowed and skipped (§5.6.1.2): "bytes=,0-1,,2-3".
    while (i < end && (value.charCodeAt(i) === 0x2c || isOWS(value.charCodeAt(i)))) i++;
    if (i >= end) break;
    let firstDigits: string | undefined;
    if (value.charCodeAt(i) !== 0x2d) {
      const from = i;
      while (i < end && isDigit(value.charCodeAt(i))) i++;
      if (i === from) return null;
      firstDigits = value.slice(from, i);
    }
    if (value.charCodeAt(i) !== 0x2d /* - */) return null;
    i++;
    const from = i;
    while (i < end && isDigit(value.charCodeAt(i))) i++;
    const lastDigits = i > from ? value.slice(from, i) : undefined;
    if (firstDigits === undefined && lastDigits === undefined) return null; // "bytes=-"
    // An int-range is invalid if last-pos is present and less than first-pos (§14.1.1). Compared
    // as numerals so that the comparison is exact however long they are.
    if (
      firstDigits !== undefined &&
      lastDigits !== undefined &&
      compareNumerals(lastDigits, firstDigits) < 0
    ) {
      return null;
    }
    if (specs.length >= maxRanges) return null;
    specs.push({
      first: firstDigits === undefined ? undefined : numeral(firstDigits),
      last: lastDigits === undefined ? undefined : numeral(lastDigits),
    });
    while (i < end && isOWS(value.charCodeAt(i))) i++;
    if (i < end && value.charCodeAt(i) !== 0x2c) return null;
  }
  return specs.length === 0 ? null : specs;
}

/** A 1*DIGIT value; Infinity beyond Number.MAX_SAFE_INTEGER (every such size is smaller). */
function numeral(digits: string): number {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : Number.POSITIVE_INFINITY;
}

function compareNumerals(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length - 1 && a.charCodeAt(i) === 0x30) i++;
  while (j < b.length - 1 && b.charCodeAt(j) === 0x30) j++;
  const x = a.slice(i);
  const y = b.slice(j);
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A Content-Range value for a part of a 206 (§14.4): "bytes 0-99/1000". */
export function contentRange(start: number, end: number, size: number): string {
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    !Number.isSafeInteger(size) ||
    start < 0 ||
    start > end ||
    end >= size
  ) {
    throw new RangeError(`not a byte range of the representation: ${start}-${end}/${size}`);
  }
  return `bytes ${start}-${end}/${size}`;
}

// The Content-Range value of a 416 (§14.4, §15.5.17): "bytes */1000".
export function unsatisfiedRange(size: number): string {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new RangeError(`size must be a safe integer >= 0: ${size}`);
  return `bytes */${size}`;
}

export interface Multipart {
  /** The Content-Type of the 206: multipart/byteranges with its boundary parameter. */
  contentType: string;
  /** Per part, in order: `head`, then bytes start..end (inclusive) of the representation. */
  parts: { head: Buffer; start: number; end: number }[];
  /** The close-delimiter, sent after the last part's bytes. */
  tail: Buffer;
  /** The exact Content-Length of the whole body. */
  length: number;
}

// RFC 2046 §5.1.1: boundary := 0*69<bchars> bcharsnospace.
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/**
 * The multipart/byteranges framing (§14.6, RFC 2046 §5.1.1) of a 206 for `ranges` of a
 * representation of `size` bytes whose 200 would have had `contentType`. Every part carries
 * Content-Range and, when there is one, that Content-Type (§15.3.7.2). The body is
 *   "--B" CRLF headers CRLF CRLF bytes  (CRLF "--B" CRLF headers CRLF CRLF bytes)*  CRLF "--B--" CRLF
 * with no preamble or epilogue. The boundary is random (96 bits) unless given; a representation
 * containing the delimiter line by chance is as unlikely as with nginx's and Apache's.
 * §15.3.7.2: a single range requested is never sent as multipart; that is the caller's choice.
 */
export function multipartByteranges(
  ranges: readonly ByteRange[],
  size: number,
  contentType: string | undefined,
  boundary: string = randomBytes(12).toString('hex'),
): Multipart {
  if (ranges.length === 0) throw new RangeError('multipart/byteranges needs at least one range');
  if (!BOUNDARY.test(boundary)) throw new TypeError(`not a multipart boundary: ${JSON.stringify(boundary)}`);
  if (contentType !== undefined && !/^[\t\x20-\x7e\x80-\xff]*$/.test(contentType)) {
    throw new TypeError(`not a field value: ${JSON.stringify(contentType)}`);
  }
  const typeLine = contentType === undefined ? '' : `Content-Type: ${contentType}\r\n`;
  let length = 0;
  const parts = ranges.map(({ start, end }, k) => {
    const head = Buffer.from(
      `${k === 0 ? '' : '\r\n'}--${boundary}\r\n${typeLine}Content-Range: ${contentRange(start, end, size)}\r\n\r\n`,
      'latin1',
    );
    length += head.length + (end - start + 1);
    return { head, start, end };
  });
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  length += tail.length;
  // The parameter value is a token or a quoted-string (§5.6.6); bchars such as "/", ":" or " " are
  // not tchar, and no bchar needs a backslash inside quotes.
  let token = true;
  for (let k = 0; k < boundary.length; k++) if (!TOKEN[boundary.charCodeAt(k)]) token = false;
  const param = token ? boundary : `"${boundary}"`;
  return { contentType: `multipart/byteranges; boundary=${param}`, parts, tail, length };
}
