// Path normalisation before routing: percent-encoded dots decoded and dot segments resolved
// (RFC 3986 §5.2.4), so `/public/../admin` or `/public/%2e%2e/admin` is routed, and forwarded, as
// `/admin`: what a route matched is what the origin sees. Other encodings (%2F included) are left as
// sent. Returns undefined for a path that climbs above the root.

export function normalizePath(path: string): string | undefined {
  let p = path;
  if (p.includes('%')) p = p.replace(/%2e/gi, '.');
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
