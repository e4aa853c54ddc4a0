// `basicAuth`: HTTP Basic authentication (RFC 7617) against an htpasswd file (auth/htpasswd.ts:
// bcrypt, SHA-256-crypt, SHA-512-crypt).
//
// - A missing, malformed or wrong credential gets the same 401 `unauthorized` with
//   `WWW-Authenticate: Basic realm="...", charset="UTF-8"`. An unknown user is checked against a
//   dummy hash of the file's usual kind and cost, so it costs what a wrong password does.
// - Password checks run on the password thread (auth/passwords.ts), never on the event loop. A
//   verified user:password is remembered for cacheTtl (by an HMAC of the credential as sent, under
//   a per-process random key, in a bounded LRU), so the hash is computed once per cacheTtl, not per
//   request; identical checks in flight are shared. The cache is emptied whenever the file changes.
//   A saturated password thread (a flood of guesses) gets 503 auth_unavailable: fail closed.
// - The file is polled and swapped on change (auth/usersFile.ts); a bad new file keeps the old users.
// - The Authorization header is forwarded upstream as nginx and Traefik do by default (the
//   application may read it); headerUser sends the user name, after removing any client copy.
import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { countHeader, quoted, setAuthUser } from '../auth/common.ts';
import { verifyPassword } from '../auth/passwords.ts';
import { UsersFile } from '../auth/usersFile.ts';
import type { BasicAuthConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { removeHeader } from '../pipeline/headers.ts';
import type { LocalResponse, Middleware, MiddlewareKind } from './types.ts';

/** Verified credentials remembered at most (each entry is a 44-character key and the user name). */
const CACHE_MAX = 10_000;
const BASIC = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The base64 part of `Authorization: Basic <token68>`, or undefined. */
function basicToken(header: string): string | undefined {
  const m = BASIC.exec(header);
  return m === null || m[1].length % 4 === 1 ? undefined : m[1];
}

/** The user-id and password in a Basic credential's base64, or undefined when it is malformed. */
function decodeBasic(b64: string): { user: string; password: string; pair: string } | undefined {
  let pair: string;
  try {
    pair = utf8.decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
  const colon = pair.indexOf(':');
  if (colon <= 0 || CONTROL.test(pair)) return undefined;
  return { user: pair.slice(0, colon), password: pair.slice(colon + 1), pair };
}

/** The user-id and password of a Basic credential (RFC 7617), or undefined when it is malformed. */
export function parseBasic(header: string): { user: string; password: string; pair: string } | undefined {
  const token = basicToken(header);
  return token === undefined ? undefined : decodeBasic(token);
}

export const basicAuth: MiddlewareKind<BasicAuthConfig> = {
  create(name, config, env) {
    const USER = Symbol(`basicAuth:${name}`);
    const challenge: LocalResponse = {
      status: 401,
      reason: 'unauthorized',
      headers: { 'www-authenticate': `Basic realm=${quoted(config.realm)}, charset="UTF-8"` },
    };
    const busy: LocalResponse = { status: 503, reason: 'auth_unavailable', headers: { 'retry-after': '1' } };
    const cache =
      config.cacheTtl > 0
        ? new LRUCache<string, string>({ max: CACHE_MAX, ttl: config.cacheTtl, updateAgeOnGet: false })
        : null;
    const secret = randomBytes(32);
    const inflight = new Map<string, Promise<string | null>>();
    // The running proxy watches the file; explain and validate (no caches) only read it once.
    const file = new UsersFile(
      config.usersFile,
      env.caches !== null,
      () => cache?.clear(),
      (message) => process.stderr.write(`[gatehouse] middlewares.${name}.basicAuth.usersFile: ${message}\n`),
    );
    env.onClose(() => file.close());

    const accept = (ctx: RequestContext, user: string) => {
      setAuthUser(ctx, user);
      if (config.headerUser !== undefined) ctx.vars?.set(USER, user);
    };

    /** The user when `user:password` is right, else null; shared by identical checks in flight. */
    const check = (key: string, user: string, password: string): Promise<string | null> => {
      let p = inflight.get(key);
      if (p !== undefined) return p;
      const db = file.current;
      const entry = db.users.get(user);
      p = verifyPassword(password, entry?.hash ?? db.dummy)
        .then((ok) => {
          const found = ok && entry !== undefined ? user : null;
          // Not remembered if the file changed meanwhile (the answer is about the old users).
          if (found !== null && cache !== null && file.current === db) cache.set(key, found);
          return found;
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, p);
      return p;
    };

    const m: Middleware = {
      name,
      onRequest(ctx) {
        const header = ctx.req.headers.authorization;
        if (header === undefined) return challenge;
        // Two Authorization fields: Gatehouse would check one and the application might read the other.
        if (countHeader(ctx.req.rawHeaders, 'authorization') > 1) return challenge;
        const token = basicToken(header);
        if (token === undefined) return challenge;
        // Keyed by the credential as sent: a cache hit decodes nothing.
        const key = createHmac('sha256', secret).update(token).digest('base64');
        const known = cache?.get(key);
        if (known !== undefined) {
          accept(ctx, known);
          return undefined;
        }
        const cred = decodeBasic(token);
        if (cred === undefined) return challenge;
        return check(key, cred.user, cred.password).then(
          (user) => {
            if (user === null) return challenge;
            accept(ctx, user);
            return undefined;
          },
          // The password thread is saturated (PasswordsBusy) or failed: fail closed.
          () => busy,
        );
      },
    };
    const headerUser = config.headerUser?.toLowerCase();
    if (headerUser !== undefined) {
      m.onUpstreamRequest = (ctx, req) => {
        // Whatever the client sent under this name never reaches the upstream.
        removeHeader(req.headers, headerUser);
        const user = ctx.vars?.get(USER) as string | undefined;
        if (user !== undefined) req.headers.push(headerUser, Buffer.from(user, 'utf8').toString('latin1'));
      };
    }
    return m;
  },
};
