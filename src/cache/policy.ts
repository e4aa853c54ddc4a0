// The rules of a shared HTTP cache (RFC 9111), as pure functions: what may be stored, for how long
// it is fresh, how old it is, whether a request may be answered with it, and how a 304 updates it.
// Section numbers are RFC 9111's unless another RFC is named. RFC 5861 adds stale-while-revalidate
// and stale-if-error, RFC 9213 CDN-Cache-Control.
//
// Written here rather than taken from http-cache-semantics, which (measured, docs/caching.md) does
// not implement must-understand, the qualified forms of no-cache and private, CDN-Cache-Control, or
// quoted directive values containing commas.

import { parseHttpDate } from '../http/conditional.ts';

export type Headers = Record<string, string | string[] | undefined>;
export type StoredHeaders = Record<string, string | string[]>;

/** Cache-Control directives: lower-case names; a value unquoted, or `true` for a bare directive. */
export type Directives = Map<string, string | true>;

const EMPTY: Directives = new Map();

/**
 * Parses Cache-Control (or CDN-Cache-Control) lines: `a, b=1, c="x, y"`. Names are case-insensitive
 * (§5.2); a quoted-string value may hold commas and backslash escapes. When a directive appears more
 * than once, the first occurrence is kept (§4.2.1).
 */
export function parseCacheControl(value: string | string[] | undefined): Directives {
  if (value === undefined) return EMPTY;
  const s = Array.isArray(value) ? value.join(',') : value;
  if (s === '') return EMPTY;
  const out: Directives = new Map();
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    let j = i;
    while (j < n && s[j] !== '=' && s[j] !== ',' && s[j] !== ' ' && s[j] !== '\t') j++;
    const name = s.slice(i, j).toLowerCase();
    while (j < n && (s[j] === ' ' || s[j] === '\t')) j++;
    let value: string | true = true;
    if (j < n && s[j] === '=') {
      j++;
      while (j < n && (s[j] === ' ' || s[j] === '\t')) j++;
      if (s[j] === '"') {
        let v = '';
        j++;
        while (j < n && s[j] !== '"') {
          if (s[j] === '\\' && j + 1 < n) j++;
          v += s[j];
          j++;
        }
        j++; // the closing quote
        value = v;
      } else {
        const k = j;
        while (j < n && s[j] !== ',' && s[j] !== ' ' && s[j] !== '\t') j++;
        value = s.slice(k, j);
      }
    }
    // Anything up to the next comma is not part of this directive's grammar: skip it.
    while (j < n && s[j] !== ',') j++;
    if (name !== '' && !out.has(name)) out.set(name, value);
    i = j + 1;
  }
  return out;
}

/** delta-seconds (§1.2.2): digits only; past 2^31 it is 2^31. Anything else is invalid (undefined). */
export function deltaSeconds(v: string | true | undefined): number | undefined {
  if (typeof v !== 'string' || !/^[0-9]+$/.test(v)) return undefined;
  const n = Number(v);
  return Math.min(n, 2147483648);
}

/** The field names of a qualified no-cache or private (`no-cache="set-cookie, x-a"`), lower case. */
export function fieldNames(v: string | true | undefined): string[] | null {
  if (typeof v !== 'string') return null;
  const names = v
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter((x) => x !== '');
  return names.length > 0 ? names : null;
}

/** An HTTP-date (RFC 9110 §5.6.7, in any of its three forms), ms; undefined when it is not one. */
export function httpDate(v: string | string[] | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined ? undefined : parseHttpDate(s.trim());
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Statuses whose caching rules this cache implements (§3, must-understand). 206 and 304 are never stored. */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 451, 501]);
/** Heuristically cacheable statuses (RFC 9110 §15.1). */
const HEURISTIC = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);

export interface PolicyOptions {
  /** Store responses with Set-Cookie (and serve them to others). */
  storeSetCookie: boolean;
  /** Treat Authorization requests as storable without public / s-maxage / must-revalidate. */
  storeAuthorized: boolean;
  /** Fraction of the Last-Modified age given as heuristic freshness; 0: none. */
  heuristic: number;
  /** Cap of heuristic freshness, seconds. */
  maxHeuristic: number;
  /** Use CDN-Cache-Control when present. */
  cdnCacheControl: boolean;
}

/** The directives that govern this cache: CDN-Cache-Control when present and valid (RFC 9213 §2.2), else Cache-Control. */
export function responseDirectives(h: Headers, opts: PolicyOptions): { cc: Directives; targeted: boolean } {
  if (opts.cdnCacheControl) {
    const cdn = parseCacheControl(h['cdn-cache-control']);
    if (cdn.size > 0) return { cc: cdn, targeted: true };
  }
  return { cc: parseCacheControl(h['cache-control']), targeted: false };
}

/** Why a response is not stored (for Cache-Status `detail` and tests), or null when it may be. */
/**
 * Request headers Gatehouse writes itself before the origin sees them (forwarding, tracing): a
 * response that varies on one of them cannot be matched against what a client sent, so it is not
 * stored (an untrusted client's X-Forwarded-Proto would otherwise select another client's variant).
 */
const REWRITTEN = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'forwarded',
  'via',
  'x-real-ip',
  'x-request-id',
  'traceparent',
  'tracestate',
]);

export function whyNotStorable(
  method: string,
  reqHeaders: Headers,
  status: number,
  resHeaders: Headers,
  opts: PolicyOptions,
): string | null {
  // §3: a method whose responses are defined as cacheable and that this cache understands.
  if (method !== 'GET') return 'method';
  const { cc, targeted } = responseDirectives(resHeaders, opts);
  const understood = UNDERSTOOD.has(status);
  // §5.2.2.3 must-understand: store only statuses whose rules are understood; it overrides no-store.
  if (cc.has('must-understand')) {
    if (!understood) return 'must-understand';
  } else {
    if (cc.has('no-store')) return 'no-store';
    if (!understood) return 'status';
  }
  const reqCc = parseCacheControl(reqHeaders['cache-control']);
  if (reqCc.has('no-store')) return 'request-no-store';
  // §5.2.2.7: unqualified private forbids a shared cache to store; the qualified form strips fields.
  if (cc.get('private') === true) return 'private';
  // §3.5: a shared cache stores an answer to an authorised request only when told it may.
  if (
    reqHeaders.authorization !== undefined &&
    !opts.storeAuthorized &&
    !cc.has('public') &&
    !cc.has('s-maxage') &&
    !cc.has('must-revalidate')
  )
    return 'authorization';
  if (resHeaders['set-cookie'] !== undefined && !opts.storeSetCookie) return 'set-cookie';
  const vary = one(resHeaders.vary);
  if (vary !== undefined) {
    const names = varyNames(resHeaders.vary);
    if (names === null) return 'vary-star';
    if (names.some((n) => REWRITTEN.has(n))) return 'vary-rewritten';
  }
  // §3: something must say the response may be reused.
  const explicit =
    cc.has('public') ||
    cc.has('max-age') ||
    cc.has('s-maxage') ||
    (!targeted && resHeaders.expires !== undefined) ||
    cc.has('stale-while-revalidate') ||
    cc.has('stale-if-error');
  if (!explicit && !HEURISTIC.has(status)) return 'no-freshness';
  // A response with no freshness and nothing to validate it with is of no use again.
  if (
    freshnessLifetime(status, resHeaders, opts) === 0 &&
    resHeaders.etag === undefined &&
    resHeaders['last-modified'] === undefined
  )
    return 'no-freshness';
  return null;
}

/**
 * Freshness lifetime in seconds (§4.2.1, for a shared cache): s-maxage, max-age, Expires − Date,
 * or the heuristic (§4.2.2) for heuristically cacheable statuses without explicit freshness. An
 * invalid max-age or Expires makes the response stale (0).
 */
export function freshnessLifetime(status: number, h: Headers, opts: PolicyOptions): number {
  const { cc, targeted } = responseDirectives(h, opts);
  if (cc.has('s-maxage')) return deltaSeconds(cc.get('s-maxage')) ?? 0;
  if (cc.has('max-age')) return deltaSeconds(cc.get('max-age')) ?? 0;
  if (!targeted && h.expires !== undefined) {
    const expires = httpDate(h.expires);
    if (expires === undefined) return 0;
    const date = httpDate(h.date) ?? Date.now();
    return Math.max(0, Math.floor((expires - date) / 1000));
  }
  if (cc.has('public') || HEURISTIC.has(status)) {
    const lm = httpDate(h['last-modified']);
    if (lm === undefined || opts.heuristic === 0) return 0;
    const date = httpDate(h.date) ?? Date.now();
    return Math.min(opts.maxHeuristic, Math.max(0, Math.floor(((date - lm) / 1000) * opts.heuristic)));
  }
  return 0;
}

/**
 * The age a response had when it arrived (§4.2.3 corrected_initial_age), in seconds: the larger of
 * the apparent age (response time − Date) and the Age header plus the time the request took.
 */
export function initialAge(h: Headers, requestTime: number, responseTime: number): number {
  const date = httpDate(h.date);
  const apparent = date === undefined ? 0 : Math.max(0, (responseTime - date) / 1000);
  const ageValue = deltaSeconds(one(h.age)) ?? 0;
  const corrected = ageValue + (responseTime - requestTime) / 1000;
  return Math.max(apparent, corrected);
}

/** The names a Vary lists, lower case; null for `*` (never matches, §4.1). */
export function varyNames(v: string | string[] | undefined): string[] | null {
  if (v === undefined) return [];
  const s = Array.isArray(v) ? v.join(',') : v;
  const names: string[] = [];
  for (const part of s.split(',')) {
    const n = part.trim().toLowerCase();
    if (n === '*') return null;
    if (n !== '' && !names.includes(n)) names.push(n);
  }
  return names.sort();
}

/**
 * A request header's value as the Vary match compares it (§4.1 allows normalising): lines joined,
 * whitespace around commas removed, case folded where the field is case-insensitive, and for
 * Accept-Encoding the acceptable codings sorted (so `gzip, br` and `br,gzip` share a variant).
 */
export function varyValue(name: string, v: string | string[] | undefined): string {
  if (v === undefined) return '';
  let s = (Array.isArray(v) ? v.join(',') : v).trim().replace(/\s*,\s*/g, ',');
  if (name === 'accept-encoding') {
    const codings: string[] = [];
    for (const member of s.toLowerCase().split(',')) {
      const [coding, ...params] = member.split(';').map((x) => x.trim());
      const q = params.find((p) => p.startsWith('q='));
      // As negotiation reads it (http/acceptEncoding.ts): q=0 refuses, a malformed q drops the member.
      if (coding === '' || (q !== undefined && !/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(q.slice(2)))) continue;
      if (q !== undefined && Number(q.slice(2)) === 0) continue;
      codings.push(coding === 'x-gzip' ? 'gzip' : coding);
    }
    return [...new Set(codings)].sort().join(',');
  }
  if (name.startsWith('accept') || name === 'origin') s = s.toLowerCase();
  return s;
}

/** The secondary key of a request for a response's Vary names: name→value pairs joined. */
export function varyKey(names: readonly string[], reqHeaders: Headers): string {
  let k = '';
  for (const n of names) k += `${n}:${varyValue(n, reqHeaders[n])}\n`;
  return k;
}

/** A stored response's facts the reuse decision needs (computed once, at store time or after a 304). */
export interface Freshness {
  /** ms, when the response (or the 304 that refreshed it) arrived. */
  responseTime: number;
  /** seconds */
  initialAge: number;
  /** seconds */
  lifetime: number;
  /** RFC 5861 windows, seconds (0: none). */
  staleWhileRevalidate: number;
  staleIfError: number;
  /** no-cache (unqualified): validate before every reuse. */
  noCache: boolean;
  /** must-revalidate, proxy-revalidate or s-maxage: never served stale (§4.2.4, §5.2.2.2, §5.2.2.10). */
  mustRevalidate: boolean;
}

export function freshnessOf(
  status: number,
  h: Headers,
  requestTime: number,
  responseTime: number,
  opts: PolicyOptions,
): Freshness {
  const { cc } = responseDirectives(h, opts);
  return {
    responseTime,
    initialAge: initialAge(h, requestTime, responseTime),
    lifetime: freshnessLifetime(status, h, opts),
    staleWhileRevalidate: deltaSeconds(cc.get('stale-while-revalidate')) ?? 0,
    staleIfError: deltaSeconds(cc.get('stale-if-error')) ?? 0,
    noCache: cc.get('no-cache') === true,
    mustRevalidate: cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('s-maxage'),
  };
}

/** current_age (§4.2.3), seconds. */
export function currentAge(f: Freshness, now: number): number {
  return f.initialAge + Math.max(0, (now - f.responseTime) / 1000);
}

/**
 * What a request may do with a stored response (§4, §5.2.1, RFC 5861):
 *   fresh        serve it
 *   stale-ok     serve it stale, and refresh it in the background (stale-while-revalidate, or the
 *                client's max-stale)
 *   revalidate   ask the origin first (a conditional request); serve it after a 304
 */
export type Reuse = 'fresh' | 'stale-ok' | 'revalidate';

export function reuse(f: Freshness, reqCc: Directives, pragmaNoCache: boolean, now: number): Reuse {
  // §5.2.1.4 (and §5.4 Pragma when Cache-Control is absent): the client wants the origin asked.
  if (reqCc.has('no-cache') || (pragmaNoCache && reqCc.size === 0)) return 'revalidate';
  if (f.noCache) return 'revalidate';
  const age = currentAge(f, now);
  const maxAge = deltaSeconds(reqCc.get('max-age'));
  if (maxAge !== undefined && age > maxAge) return 'revalidate';
  if (f.lifetime > age) {
    // §5.2.1.3 min-fresh: the client wants it fresh for at least that much longer.
    const minFresh = deltaSeconds(reqCc.get('min-fresh')) ?? 0;
    return f.lifetime - age >= minFresh ? 'fresh' : 'revalidate';
  }
  if (f.mustRevalidate) return 'revalidate';
  const staleFor = age - f.lifetime;
  // §5.2.1.2 max-stale: the client accepts a stale answer (as a hit; no background refresh needed,
  // but one keeps the next client from getting it stale too).
  if (reqCc.has('max-stale')) {
    const ms = reqCc.get('max-stale');
    if (ms === true || staleFor <= (deltaSeconds(ms) ?? -1)) return 'stale-ok';
  }
  if (f.staleWhileRevalidate > 0 && staleFor <= f.staleWhileRevalidate) return 'stale-ok';
  return 'revalidate';
}

/** stale-if-error (RFC 5861 §4): may this stored response stand in for an error now? */
export function staleIfErrorAllows(f: Freshness, reqCc: Directives, now: number): boolean {
  if (f.mustRevalidate) return false;
  const staleFor = currentAge(f, now) - f.lifetime;
  const window = Math.max(f.staleIfError, deltaSeconds(reqCc.get('stale-if-error')) ?? 0);
  return staleFor <= window;
}

/** Fields never stored (§3.1): hop-by-hop and connection-listed fields, and our own per-answer ones. */
const NOT_STORED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authentication-info',
  'x-request-id',
  'age',
  'date',
]);

/**
 * The headers kept with a stored response: without §3.1's fields, the fields named by a qualified
 * private (§5.2.2.7) or no-cache (§5.2.2.4: reused only after validation, so simplest not to keep),
 * and Age and Date, which are computed on the way out.
 */
export function storedHeaders(h: StoredHeaders, opts: PolicyOptions): StoredHeaders {
  const { cc } = responseDirectives(h, opts);
  const drop = new Set(NOT_STORED);
  const conn = h.connection;
  if (conn !== undefined)
    for (const n of (Array.isArray(conn) ? conn.join(',') : conn).split(','))
      drop.add(n.trim().toLowerCase());
  for (const d of ['private', 'no-cache']) for (const n of fieldNames(cc.get(d)) ?? []) drop.add(n);
  const out: StoredHeaders = {};
  for (const k in h) if (!drop.has(k)) out[k] = h[k];
  return out;
}

/**
 * Fields a 304 does not update (§3.2, §4.3.4): the ones describing the stored content's bytes, and
 * Set-Cookie, which answers the one client whose request was the revalidation (it goes to that
 * client only, never into what others are served).
 */
const NOT_UPDATED = new Set([
  'content-length',
  'content-encoding',
  'content-range',
  'transfer-encoding',
  'set-cookie',
]);

/**
 * §4.3.4: does a 304 identify this stored response? By a strong ETag when the 304 has one; else by
 * Last-Modified when both have it. A 304 with no validator at all answers the conditional request
 * this cache made for exactly this entry (its validators were the only ones sent), so it identifies
 * it: the RFC's third case, read for a cache that revalidates one stored response at a time.
 */
export function notModifiedMatches(stored: StoredHeaders, h304: Headers): boolean {
  const etag = one(h304.etag);
  const storedEtag = one(stored.etag);
  if (etag !== undefined && !etag.startsWith('W/')) return storedEtag === etag;
  const lm = one(h304['last-modified']);
  const storedLm = one(stored['last-modified']);
  if (lm !== undefined && storedLm !== undefined) return lm === storedLm;
  if (etag !== undefined) return storedEtag !== undefined && storedEtag.replace(/^W\//, '') === etag.slice(2);
  return lm === undefined || storedLm === undefined;
}

/** §3.2: the stored headers updated with a 304's. */
export function updateHeaders(
  stored: StoredHeaders,
  h304: StoredHeaders,
  opts: PolicyOptions,
): StoredHeaders {
  const fresh = storedHeaders(h304, opts);
  const out: StoredHeaders = { ...stored };
  for (const k in fresh) if (!NOT_UPDATED.has(k)) out[k] = fresh[k];
  return out;
}

/** Safe methods (RFC 9110 §9.2.1): everything else invalidates (§4.4). */
export function isUnsafe(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && method !== 'TRACE';
}
