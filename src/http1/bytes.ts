// What the HTTP/1.1 request parser (server/h1) and response parser (upstream/h1pool) share: byte
// classes of RFC 9110/9112 as 256-entry lookup tables, hex digits, and latin1 decoding.

export const HTAB = 9;
export const SP = 32;

/** A chunk size above this would overflow: size * 16 + 15 stays below 2^53. */
export const MAX_SAFE_CHUNK = 2 ** 49;

export function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

export const isAlnum = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
/** RFC 9110 tchar. */
export const TOKEN = table((c) => isAlnum(c) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)));
/** field-value (and reason-phrase) bytes: HTAB, SP, VCHAR, obs-text. */
export const VALUE = table((c) => c === HTAB || (c >= 32 && c !== 127));
/** chunk-extension quoted-string qdtext. */
export const QDTEXT = table(
  (c) => c === HTAB || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c !== 127),
);
/** Hex digit values, -1 for anything else. */
export const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c;

type Latin1 = Buffer & { latin1Slice?: (start: number, end: number) => string };
/** buf[start, end) as a latin1 string, by the fastest way this Node has. */
export const latin1: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as Latin1).latin1Slice === 'function'
    ? (buf, start, end) => (buf as Latin1).latin1Slice!(start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);
