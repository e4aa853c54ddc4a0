// Path normalisation before routing, so that what a route matched is what the origin sees and no
// spelling of a path can leave the prefix it was routed by (docs/routing.md, "Paths"):
//
//   - percent-encoded unreserved characters are decoded (`%61dmin` is `admin`, `%2e` is `.`) and
//     every other percent-encoding is written with upper-case hex (RFC 3986 §6.2.2);
//   - runs of `/` are merged into one (as nginx's merge_slashes);
//   - dot segments are resolved (RFC 3986 §5.2.4); a path that climbs above the root is refused;
//   - a backslash, a malformed percent-encoding, or a control character is refused.
//
// Encoded slashes (`%2F`, `%5C`) are kept as sent (upper case) and the request is then refused by
// the pipeline unless its route sets `allowEncodedSlashes`: an origin that decodes them would
// otherwise see `/public/..%2Fsecret` as `/secret`.

/** A path that needs no work: no `%`, `\`, `//`, `/.` nor a control character. */
const PLAIN = /^(?:[^%\\/\x00-\x1f\x7f]|\/(?![/.]))*$/;

const HEX = '0123456789ABCDEF';

/** The normalised path, or undefined when it must be refused (400). */
export function normalizePath(path: string): string | undefined {
  if (PLAIN.test(path)) return path;
  let p = path;
  if (p.includes('%')) {
    const decoded = decodeUnreserved(p);
    if (decoded === undefined) return undefined;
    p = decoded;
  }
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 92 /* \ */ || c < 0x20 || c === 0x7f) return undefined;
  }
  if (p.includes('//')) p = p.replace(/\/{2,}/g, '/');
  if (!p.includes('/.')) return p;
  const segs = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i];
    if (s === '.') {
      if (i === segs.length - 1) out.push('');
    } else if (s === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      if (i === segs.length - 1) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}`;
}

/** Whether a normalised path holds an encoded `/` or `\`. */
export function hasEncodedSlash(path: string): boolean {
  return path.includes('%') && (path.includes('%2F') || path.includes('%5C'));
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/** Unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3). */
function unreserved(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  );
}

function decodeUnreserved(p: string): string | undefined {
  let out = '';
  let last = 0;
  for (let i = p.indexOf('%'); i >= 0; i = p.indexOf('%', i + 1)) {
    if (i + 2 >= p.length) return undefined;
    const hi = hexValue(p.charCodeAt(i + 1));
    const lo = hexValue(p.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return undefined;
    const v = hi * 16 + lo;
    out += p.slice(last, i);
    out += unreserved(v) ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`;
    last = i + 3;
    i += 2;
  }
  return out + p.slice(last);
}
