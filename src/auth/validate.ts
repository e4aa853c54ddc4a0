// The semantic checks of the authentication middlewares, for config/validate.ts: the files they
// read (every problem of an htpasswd file with its line; a key file that holds no usable public
// key) and the header names they send upstream.
import { RESERVED_HEADERS } from './common.ts';
import { htpasswdProblems } from './htpasswd.ts';
import { loadLocalKey } from './jwks.ts';

export interface AuthProblem {
  /** Below `middlewares`: [name, kind, key, ...]. */
  readonly path: PropertyKey[];
  readonly reason: string;
}

type Raw = Record<string, unknown>;
const obj = (v: unknown): Raw => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Every problem of the auth middlewares in `middlewares` (the raw config block; wrong types are the schema's to report). */
export function authProblems(middlewares: unknown): AuthProblem[] {
  const out: AuthProblem[] = [];
  const reserved = (v: unknown, path: PropertyKey[], extra: readonly string[] = []) => {
    const h = str(v)?.toLowerCase();
    if (h !== undefined && (RESERVED_HEADERS.has(h) || extra.includes(h)))
      out.push({ path, reason: `${h} is a header the proxy sets or removes itself` });
  };
  for (const [name, mv] of Object.entries(obj(middlewares))) {
    const m = obj(mv);
    if (m.basicAuth !== undefined) {
      const b = obj(m.basicAuth);
      const file = str(b.usersFile);
      if (file !== undefined)
        for (const reason of htpasswdProblems(file))
          out.push({ path: [name, 'basicAuth', 'usersFile'], reason });
      reserved(b.headerUser, [name, 'basicAuth', 'headerUser']);
    }
    if (m.jwt !== undefined) {
      const j = obj(m.jwt);
      const url = j.jwksUrl !== undefined;
      const file = str(j.keyFile);
      if (url && j.keyFile !== undefined)
        out.push({ path: [name, 'jwt', 'keyFile'], reason: 'use one of jwksUrl and keyFile, not both' });
      else if (!url && j.keyFile === undefined)
        out.push({ path: [name, 'jwt'], reason: 'needs jwksUrl or keyFile (where the signing keys are)' });
      if (file !== undefined) {
        try {
          loadLocalKey(file);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          out.push({
            path: [name, 'jwt', 'keyFile'],
            reason: code !== undefined ? `cannot read ${file} (${code})` : (err as Error).message,
          });
        }
      }
      const cookie = str(j.cookie);
      if (cookie !== undefined && !COOKIE_NAME.test(cookie))
        out.push({ path: [name, 'jwt', 'cookie'], reason: 'not a valid cookie name' });
      for (const [claim, h] of Object.entries(obj(j.claimsToHeaders)))
        reserved(h, [name, 'jwt', 'claimsToHeaders', claim]);
    }
    if (m.forwardAuth !== undefined) {
      const f = obj(m.forwardAuth);
      list(f.requestHeaders).forEach((h, i) => {
        reserved(h, [name, 'forwardAuth', 'requestHeaders', i], ['x-forwarded-method', 'x-forwarded-uri']);
      });
      list(f.copyHeaders).forEach((h, i) => {
        reserved(h, [name, 'forwardAuth', 'copyHeaders', i]);
      });
    }
    if (m.apiKey !== undefined) {
      const a = obj(m.apiKey);
      reserved(a.header, [name, 'apiKey', 'header']);
      reserved(a.headerName, [name, 'apiKey', 'headerName']);
      const header = str(a.header) ?? (a.query === undefined ? 'x-api-key' : undefined);
      if (header !== undefined && str(a.headerName)?.toLowerCase() === header.toLowerCase())
        out.push({ path: [name, 'apiKey', 'headerName'], reason: 'the same header as the key' });
      const names = new Map<string, number>();
      const digests = new Map<string, number>();
      list(a.keys).forEach((kv, i) => {
        const k = obj(kv);
        const keyName = str(k.name);
        const digest = str(k.sha256)?.toLowerCase();
        if (keyName !== undefined) {
          if (keyName === '' || CONTROL.test(keyName))
            out.push({
              path: [name, 'apiKey', 'keys', i, 'name'],
              reason: 'empty, or with a control character',
            });
          else if (names.has(keyName))
            out.push({
              path: [name, 'apiKey', 'keys', i, 'name'],
              reason: `already keys.${names.get(keyName)}`,
            });
          else names.set(keyName, i);
        }
        if (digest !== undefined) {
          if (digests.has(digest))
            out.push({
              path: [name, 'apiKey', 'keys', i, 'sha256'],
              reason: `the same key as keys.${digests.get(digest)}`,
            });
          else digests.set(digest, i);
        }
      });
    }
  }
  return out;
}
