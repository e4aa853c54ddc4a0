// `jwt`: bearer JSON Web Tokens (RFC 7519) verified with jose, keys from a JWKS URL (auth/jwks.ts:
// cached, refreshed, one rate-limited refetch on an unknown kid) or a local key file.
//
// - The token comes from `Authorization: Bearer` (RFC 6750 §2.1), else from the configured cookie.
//   None: 401 with `WWW-Authenticate: Bearer realm="<middleware>"` (no error code, RFC 6750 §3.1).
//   Any failed check (signature, algorithm, kid, iss, aud, exp, nbf, format): the same 401 with
//   `error="invalid_token"` and no description: the client is not told which check failed. Two
//   Authorization fields: 400 `error="invalid_request"`. No keys obtainable: 503 auth_unavailable.
// - Checks: the algorithm against the allow-list before any key is looked up (asymmetric only, so
//   no `none` and no HS256 made with a public key as the secret), the signature, iss and aud when
//   configured, exp and nbf with clockSkew of tolerance.
// - A verified token is remembered (an LRU bounded by count and bytes) until its exp, at most 60 s,
//   so a client's repeated token costs a map lookup instead of a signature check (~70 µs); checks of
//   one token in flight are shared.
// - claimsToHeaders: the named headers are removed from what the client sent, always, then set from
//   the verified claims (strings as they are, numbers and booleans as text, arrays of scalars
//   joined with commas, objects as JSON; a value with a control character is not sent).
import type { KeyObject } from 'node:crypto';
import { errors, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import { Agent } from 'undici';
import { countHeader, headerValue, quoted, setAuthUser, varsOf } from '../auth/common.ts';
import { FETCH_TIMEOUT_MS, JwksUnavailable, loadLocalKey, RemoteKeySet } from '../auth/jwks.ts';
import type { JwtConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { removeHeader } from '../pipeline/headers.ts';
import type { LocalResponse, Middleware, MiddlewareKind } from './types.ts';

/** How long a verified token is remembered at most, whatever its exp. */
export const VERIFIED_TTL_MS = 60_000;
const CACHE_MAX = 10_000;
const CACHE_MAX_BYTES = 16 * 1024 * 1024;
/** A longer token is refused unchecked (and never cached). */
export const MAX_TOKEN_LENGTH = 16 * 1024;
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const BEARER_SCHEME = /^bearer(?: |$)/i;

/** Signature checks started (figures and tests: a remembered token starts none). */
export const jwtStats = { verifications: 0 };

interface Verified {
  /** Date.now() after which the entry is not used. */
  readonly until: number;
  /** Flat [header, value, ...] from claimsToHeaders. */
  readonly headers: string[];
  /** The `sub` claim, for the access log. */
  readonly user: string | undefined;
}

/**
 * The token a request carries: a string ('' when an Authorization: Bearer is malformed), undefined
 * when there is none, null when there are two Authorization fields.
 */
export function tokenOf(ctx: RequestContext, cookie: string | undefined): string | undefined | null {
  const auth = ctx.req.headers.authorization;
  if (auth !== undefined) {
    if (countHeader(ctx.req.rawHeaders, 'authorization') > 1) return null;
    const m = BEARER.exec(auth);
    if (m !== null) return m[1];
    if (BEARER_SCHEME.test(auth)) return '';
    // Another scheme (Basic, ...): the cookie may still carry a token.
  }
  if (cookie !== undefined) return cookieValue(ctx.req.headers.cookie, cookie);
  return undefined;
}

/** The first cookie named `name` in a Cookie header (quotes around the value removed), or undefined. */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : header;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const v = part.slice(eq + 1).trim();
    return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
  }
  return undefined;
}

/** A claim's value as header text, or undefined when it has none. */
function claimText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.join(',');
  return JSON.stringify(v);
}

export const jwt: MiddlewareKind<JwtConfig> = {
  create(name, config, env) {
    const STATE = Symbol(`jwt:${name}`);
    const realm = `Bearer realm=${quoted(name)}`;
    const missing: LocalResponse = {
      status: 401,
      reason: 'unauthorized',
      headers: { 'www-authenticate': realm },
    };
    const invalid: LocalResponse = {
      status: 401,
      reason: 'unauthorized',
      headers: { 'www-authenticate': `${realm}, error="invalid_token"` },
    };
    const badRequest: LocalResponse = {
      status: 400,
      reason: 'bad_request',
      headers: { 'www-authenticate': `${realm}, error="invalid_request"` },
    };
    const unavailable: LocalResponse = {
      status: 503,
      reason: 'auth_unavailable',
      headers: { 'retry-after': '5' },
    };

    let key: KeyObject | JWTVerifyGetKey;
    if (config.jwksUrl !== undefined) {
      const agent = new Agent({ connect: { timeout: FETCH_TIMEOUT_MS }, connections: 4 });
      env.onClose(() => void agent.close().catch(() => {}));
      const remote = new RemoteKeySet(config.jwksUrl, config.jwksCacheTtl, agent, (message) =>
        process.stderr.write(`[gatehouse] middlewares.${name}.jwt.jwksUrl: ${message}\n`),
      );
      key = remote.getKey as JWTVerifyGetKey;
      // The running proxy fetches the keys at once, so the first request does not wait for them.
      if (env.caches !== null) void remote.refresh();
    } else {
      key = loadLocalKey(config.keyFile as string);
    }
    const options: JWTVerifyOptions = {
      algorithms: config.algorithms,
      issuer: config.issuer,
      audience: config.audience,
      clockTolerance: Math.floor(config.clockSkew / 1000),
    };
    const skewMs = Math.floor(config.clockSkew / 1000) * 1000;
    const claims = Object.entries(config.claimsToHeaders).map(([c, h]) => [c, h.toLowerCase()] as const);
    const strip = [...new Set(claims.map(([, h]) => h))];
    const cache = new LRUCache<string, Verified>({
      max: CACHE_MAX,
      maxSize: CACHE_MAX_BYTES,
      sizeCalculation: (v, k) => k.length + 64 + v.headers.reduce((n, s) => n + s.length, 0),
    });
    const inflight = new Map<string, Promise<Verified>>();

    const check = async (token: string): Promise<Verified> => {
      jwtStats.verifications++;
      let payload: JWTPayload;
      try {
        payload = (await jwtVerify(token, key as JWTVerifyGetKey, options)).payload;
      } catch (err) {
        // No kid and several keys that fit: try each (jose hands them over as an async iterator).
        if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
        let found: JWTPayload | undefined;
        for await (const k of err as unknown as AsyncIterable<CryptoKey>) {
          try {
            found = (await jwtVerify(token, k, options)).payload;
            break;
          } catch {}
        }
        if (found === undefined) throw err;
        payload = found;
      }
      const headers: string[] = [];
      for (const [claim, header] of claims) {
        const text = claimText(payload[claim]);
        const v = text === undefined ? undefined : headerValue(text);
        if (v !== undefined) headers.push(header, v);
      }
      const now = Date.now();
      const exp = typeof payload.exp === 'number' ? payload.exp * 1000 + skewMs : Number.POSITIVE_INFINITY;
      const v: Verified = {
        until: Math.min(exp, now + VERIFIED_TTL_MS),
        headers,
        user: typeof payload.sub === 'string' ? payload.sub : undefined,
      };
      cache.set(token, v);
      return v;
    };
    const verify = (token: string): Promise<Verified> => {
      let p = inflight.get(token);
      if (p === undefined) {
        p = check(token).finally(() => inflight.delete(token));
        inflight.set(token, p);
      }
      return p;
    };
    const accept = (ctx: RequestContext, v: Verified) => {
      if (v.user !== undefined) setAuthUser(ctx, v.user);
      if (strip.length > 0) varsOf(ctx).set(STATE, v);
    };

    const m: Middleware = {
      name,
      onRequest(ctx) {
        const token = tokenOf(ctx, config.cookie);
        if (token === undefined) return missing;
        if (token === null) return badRequest;
        if (token === '' || token.length > MAX_TOKEN_LENGTH) return invalid;
        const known = cache.get(token);
        if (known !== undefined) {
          if (known.until > Date.now()) {
            accept(ctx, known);
            return undefined;
          }
          cache.delete(token);
        }
        return verify(token).then(
          (v) => {
            accept(ctx, v);
            return undefined;
          },
          (err) => (err instanceof JwksUnavailable ? unavailable : invalid),
        );
      },
    };
    if (strip.length > 0) {
      m.onUpstreamRequest = (ctx, req) => {
        // Forged claim headers never reach the upstream, whatever else happened.
        for (const h of strip) removeHeader(req.headers, h);
        const v = ctx.vars?.get(STATE) as Verified | undefined;
        if (v !== undefined) for (let i = 0; i < v.headers.length; i++) req.headers.push(v.headers[i]);
      };
    }
    return m;
  },
};
