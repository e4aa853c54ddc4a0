// `apiKey`: API keys in a header (x-api-key by default) or a query parameter, stored as their SHA-256.
//
// - A request carries exactly one key: none, two fields of the header, the parameter twice, or a key
//   in both the header and the query (when both are configured) all get the same 401 `unauthorized`
//   with `WWW-Authenticate: ApiKey realm="<middleware>"`, as does a wrong key.
// - The presented key's SHA-256 is compared with every stored digest, all of them every time, in
//   constant time (keyMatcher): neither the time taken nor the order of the keys tells which one
//   nearly matched.
// - The key never goes further: the header is removed from the upstream request and the parameter
//   from the query (ctx.query, so the upstream path, the cache key and the mirror never see it). The
//   access log never has the query; it gets the key's name (ctx.vars, auth/common.ts AUTH_USER).
// - headerName sends the key's name upstream, after removing any copy the client sent.
import { createHash, timingSafeEqual } from 'node:crypto';
import { countHeader, quoted, setAuthUser } from '../auth/common.ts';
import type { ApiKeyConfig } from '../config/schema.ts';
import { removeHeader } from '../pipeline/headers.ts';
import type { LocalResponse, Middleware, MiddlewareKind } from './types.ts';

/**
 * A key matcher: the name of the key whose SHA-256 is that of `presented`, or undefined. The
 * presented key's digest is compared with every stored digest, all of them every time, by OR-ing
 * the XOR of their 32-bit words: no early exit, no branch on the data, so neither the time taken
 * nor the order of the keys tells which one nearly matched (~0.01 µs a key, where a
 * crypto.timingSafeEqual call per key costs ~0.2 µs). The one found is confirmed with
 * crypto.timingSafeEqual.
 */
export function keyMatcher(
  keys: readonly { name: string; sha256: string }[],
): (presented: string) => string | undefined {
  const digests = keys.map((k) => Buffer.from(k.sha256, 'hex'));
  const words = new Uint32Array(keys.length * 8);
  digests.forEach((d, i) => {
    for (let w = 0; w < 8; w++) words[i * 8 + w] = d.readUInt32LE(w * 4);
  });
  const names = keys.map((k) => k.name);
  const n = keys.length;
  return (presented) => {
    const d = createHash('sha256').update(presented, 'utf8').digest();
    const d0 = d.readUInt32LE(0);
    const d1 = d.readUInt32LE(4);
    const d2 = d.readUInt32LE(8);
    const d3 = d.readUInt32LE(12);
    const d4 = d.readUInt32LE(16);
    const d5 = d.readUInt32LE(20);
    const d6 = d.readUInt32LE(24);
    const d7 = d.readUInt32LE(28);
    let found = -1;
    for (let i = 0, o = 0; i < n; i++, o += 8) {
      const diff =
        (words[o] ^ d0) |
        (words[o + 1] ^ d1) |
        (words[o + 2] ^ d2) |
        (words[o + 3] ^ d3) |
        (words[o + 4] ^ d4) |
        (words[o + 5] ^ d5) |
        (words[o + 6] ^ d6) |
        (words[o + 7] ^ d7);
      // The first match is kept; the loop goes on to the end either way.
      found = diff === 0 && found < 0 ? i : found;
    }
    return found >= 0 && timingSafeEqual(digests[found], d) ? names[found] : undefined;
  };
}

/** A query parameter's name as decoded (`+` is a space), or null when it does not decode. */
function paramName(part: string): string | null {
  const eq = part.indexOf('=');
  const raw = (eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/**
 * The values of the parameter `name` in `query` (with its `?`), decoded, and the query without
 * them ('' when nothing is left). A parameter whose name does not decode is kept as it is.
 */
export function takeParam(query: string, name: string): { values: string[]; rest: string } {
  if (query.length < 2) return { values: [], rest: query };
  const values: string[] = [];
  const kept: string[] = [];
  for (const part of query.slice(1).split('&')) {
    if (paramName(part) !== name) {
      kept.push(part);
      continue;
    }
    const eq = part.indexOf('=');
    const raw = eq < 0 ? '' : part.slice(eq + 1).replace(/\+/g, ' ');
    try {
      values.push(decodeURIComponent(raw));
    } catch {
      values.push(raw);
    }
  }
  if (values.length === 0) return { values, rest: query };
  return { values, rest: kept.length === 0 ? '' : `?${kept.join('&')}` };
}

export const apiKey: MiddlewareKind<ApiKeyConfig> = {
  create(name, config) {
    const NAME = Symbol(`apiKey:${name}`);
    const header = (config.header ?? (config.query === undefined ? 'x-api-key' : undefined))?.toLowerCase();
    const param = config.query;
    const match = keyMatcher(config.keys);
    const headerName = config.headerName?.toLowerCase();
    const refused: LocalResponse = {
      status: 401,
      reason: 'unauthorized',
      headers: { 'www-authenticate': `ApiKey realm=${quoted(name)}` },
    };

    const m: Middleware = {
      name,
      onRequest(ctx) {
        let presented: string | undefined;
        let rest: string | undefined;
        if (header !== undefined) {
          const v = ctx.req.headers[header];
          if (v !== undefined) {
            if (Array.isArray(v) || countHeader(ctx.req.rawHeaders, header) !== 1) return refused;
            presented = v.trim();
          }
        }
        if (param !== undefined && ctx.query.length > 1) {
          const taken = takeParam(ctx.query, param);
          if (taken.values.length > 0) {
            if (taken.values.length > 1 || presented !== undefined) return refused;
            presented = taken.values[0];
            rest = taken.rest;
          }
        }
        if (presented === undefined || presented === '') return refused;
        const key = match(presented);
        if (key === undefined) return refused;
        // The key leaves the request here: the upstream path, the cache and the mirror see the rest.
        if (rest !== undefined) ctx.query = rest;
        setAuthUser(ctx, key);
        if (headerName !== undefined) ctx.vars?.set(NAME, key);
        return undefined;
      },
      onUpstreamRequest(ctx, req) {
        if (header !== undefined) removeHeader(req.headers, header);
        if (headerName !== undefined) {
          removeHeader(req.headers, headerName);
          const key = ctx.vars?.get(NAME) as string | undefined;
          if (key !== undefined) req.headers.push(headerName, Buffer.from(key, 'utf8').toString('latin1'));
        }
      },
    };
    return m;
  },
};
