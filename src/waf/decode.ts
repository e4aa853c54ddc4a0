// Normalisation of one input value before the detectors see it, by hand-written scanners (no
// regular expressions, every pass linear in the value's length):
//
//   1. percent-decoding, repeated up to MAX_PASSES times while it changes (%252e → %2e → .),
//      with `+` as a space on the first pass for query and form values, `%uXXXX` (IIS), and UTF-8
//      decoded by hand so that overlong forms (%c0%af, %e0%80%ae) are caught and read as the
//      character they spell, as old decoders did;
//   2. HTML character references, twice at most (&#106; &#x6A &lt; &colon; &amp;lt;);
//   3. JavaScript escapes \uXXXX, \u{X..}, \xHH;
//   4. NUL removed (and flagged).
//
// The result is lower-cased by the caller for the detectors. What was seen on the way is left in
// `decodeFlags` (one module-level word: no allocation per value).

export const F_NUL = 1;
export const F_OVERLONG = 2;
export const F_BAD_UTF8 = 4;
/** Decoded more than once: the value was percent-encoded twice or more. */
export const F_MULTI = 8;
/** Had percent-encoding at all (of anything). */
export const F_ENCODED = 16;

export let decodeFlags = 0;

/** For a value that needed no decoding. */
export function clearDecodeFlags(): void {
  decodeFlags = 0;
}

const MAX_PASSES = 3;

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

function hex2(s: string, i: number): number {
  if (i + 1 >= s.length) return -1;
  const a = hex(s.charCodeAt(i));
  if (a < 0) return -1;
  const b = hex(s.charCodeAt(i + 1));
  if (b < 0) return -1;
  return (a << 4) | b;
}

function hex4(s: string, i: number): number {
  if (i + 3 >= s.length) return -1;
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const h = hex(s.charCodeAt(i + k));
    if (h < 0) return -1;
    v = (v << 4) | h;
  }
  return v;
}

/** One percent-decoding pass. */
function percentPass(s: string, plus: boolean): string {
  let out = '';
  let last = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 43 /* + */ && plus) {
      out += `${s.slice(last, i)} `;
      last = i + 1;
      continue;
    }
    if (c !== 37 /* % */) continue;
    // %uXXXX
    const u = s.charCodeAt(i + 1) | 0x20;
    if (u === 117) {
      const v = hex4(s, i + 2);
      if (v >= 0) {
        out += s.slice(last, i) + String.fromCharCode(v);
        i += 5;
        last = i + 1;
        continue;
      }
    }
    const b = hex2(s, i + 1);
    if (b < 0) continue;
    out += s.slice(last, i);
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i += 2;
      last = i + 1;
      continue;
    }
    // A UTF-8 sequence written as %XX%XX...: decoded here so that overlong forms are seen.
    let need = 0;
    let cp = 0;
    let min = 0;
    if (b >= 0xc0 && b <= 0xdf) {
      need = 1;
      cp = b & 0x1f;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      cp = b & 0x0f;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf7) {
      need = 3;
      cp = b & 0x07;
      min = 0x10000;
    }
    let j = i + 3;
    let ok = need > 0;
    for (let k = 0; k < need && ok; k++) {
      if (s.charCodeAt(j) !== 37) {
        ok = false;
        break;
      }
      const cb = hex2(s, j + 1);
      if (cb < 0x80 || cb > 0xbf) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (cb & 0x3f);
      j += 3;
    }
    if (!ok) {
      decodeFlags |= F_BAD_UTF8;
      out += '\ufffd';
      i += 2;
      last = i + 1;
      continue;
    }
    if (cp < min) decodeFlags |= F_OVERLONG;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      decodeFlags |= F_BAD_UTF8;
      out += '\ufffd';
    } else out += String.fromCodePoint(cp);
    i = j - 1;
    last = j;
  }
  return last === 0 ? s : out + s.slice(last);
}

/** Named character references that matter for script and SQL (lower-cased names). */
const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  colon: ':',
  semi: ';',
  lpar: '(',
  rpar: ')',
  lsqb: '[',
  rsqb: ']',
  lbrack: '[',
  rbrack: ']',
  lcub: '{',
  rcub: '}',
  lbrace: '{',
  rbrace: '}',
  sol: '/',
  bsol: '\\',
  num: '#',
  comma: ',',
  period: '.',
  excl: '!',
  equals: '=',
  tab: '\t',
  newline: '\n',
  grave: '`',
  plus: '+',
  dollar: '$',
  percnt: '%',
  ast: '*',
  quest: '?',
  hat: '^',
  verbar: '|',
  vert: '|',
  lowbar: '_',
  commat: '@',
  dash: '-',
  hyphen: '-',
};

/** One pass of HTML character reference decoding; numeric ones without `;` too (browsers accept them). */
function entityPass(s: string): string {
  let out = '';
  let last = 0;
  const n = s.length;
  for (let i = s.indexOf('&'); i >= 0 && i < n; i = s.indexOf('&', i + 1)) {
    let j = i + 1;
    let ch = '';
    if (s.charCodeAt(j) === 35 /* # */) {
      j++;
      let v = 0;
      let digits = 0;
      if ((s.charCodeAt(j) | 0x20) === 120 /* x */) {
        j++;
        for (; j < n && digits < 8; j++, digits++) {
          const h = hex(s.charCodeAt(j));
          if (h < 0) break;
          v = v * 16 + h;
        }
      } else {
        for (; j < n && digits < 10; j++, digits++) {
          const c = s.charCodeAt(j);
          if (c < 48 || c > 57) break;
          v = v * 10 + (c - 48);
        }
      }
      if (digits === 0) continue;
      ch = v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ? '\ufffd' : String.fromCodePoint(v);
    } else {
      let k = j;
      while (k < n && k - j < 10) {
        const c = s.charCodeAt(k) | 0x20;
        if (c < 97 || c > 122) break;
        k++;
      }
      if (k === j) continue;
      const e = ENTITIES[s.slice(j, k).toLowerCase()];
      if (e === undefined) continue;
      ch = e;
      j = k;
    }
    if (s.charCodeAt(j) === 59 /* ; */) j++;
    out += s.slice(last, i) + ch;
    last = j;
    i = j - 1;
  }
  return last === 0 ? s : out + s.slice(last);
}

/** \uXXXX, \u{X...}, \xHH (JavaScript string escapes). */
function jsEscapePass(s: string): string {
  let out = '';
  let last = 0;
  for (let i = s.indexOf('\\'); i >= 0; i = s.indexOf('\\', i + 1)) {
    const t = s.charCodeAt(i + 1) | 0x20;
    let v = -1;
    let end = i;
    if (t === 117 /* u */) {
      if (s.charCodeAt(i + 2) === 123 /* { */) {
        const close = s.indexOf('}', i + 3);
        if (close > i + 3 && close - i <= 10) {
          v = 0;
          for (let k = i + 3; k < close; k++) {
            const h = hex(s.charCodeAt(k));
            if (h < 0) {
              v = -1;
              break;
            }
            v = v * 16 + h;
          }
          end = close + 1;
        }
      } else {
        v = hex4(s, i + 2);
        end = i + 6;
      }
    } else if (t === 120 /* x */) {
      v = hex2(s, i + 2);
      end = i + 4;
    }
    if (v < 0 || v > 0x10ffff) continue;
    out += s.slice(last, i) + String.fromCodePoint(v >= 0xd800 && v <= 0xdfff ? 0xfffd : v);
    last = end;
    i = end - 1;
  }
  return last === 0 ? s : out + s.slice(last);
}

/**
 * The normalised form of one value. `plus`: `+` means a space (query strings and form bodies).
 * Sets decodeFlags.
 */
export function decodeValue(raw: string, plus: boolean): string {
  decodeFlags = 0;
  let s = raw;
  let passes = 0;
  for (; passes < MAX_PASSES; passes++) {
    if (s.indexOf('%') < 0 && !(plus && passes === 0 && s.indexOf('+') >= 0)) break;
    const next = percentPass(s, plus && passes === 0);
    if (next === s) break;
    if (passes === 0 && s.indexOf('%') >= 0) decodeFlags |= F_ENCODED;
    if (passes > 0) decodeFlags |= F_MULTI;
    s = next;
  }
  if (s.indexOf('&') >= 0) {
    s = entityPass(s);
    if (s.indexOf('&') >= 0) s = entityPass(s);
  }
  if (s.indexOf('\\') >= 0) s = jsEscapePass(s);
  if (s.indexOf('\0') >= 0) {
    decodeFlags |= F_NUL;
    s = s.split('\0').join('');
  }
  return s;
}

/** Control characters escaped and the length capped, for log lines. */
export function printable(s: string, max = 64): string {
  let out = '';
  const n = Math.min(s.length, max);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0) || c === 0x2028 || c === 0x2029)
      out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 92) out += '\\\\';
    else out += s[i];
  }
  return s.length > max ? `${out}…` : out;
}
