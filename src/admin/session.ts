// Dashboard sessions. Signing in with the admin token gives the browser a cookie holding
// `<id>.<expires>.<mac>`: a random session id (16 bytes, base64url), the expiry (milliseconds since
// the epoch) and an HMAC-SHA256 of `<id>.<expires>` (base64url) under a key drawn at random when the
// admin listener starts. Nothing about the token is in it, a changed expiry breaks the MAC, and a
// restart ends every session. Signing out puts the id on a list of revoked sessions, kept until the
// session would have expired anyway, so a copy of the cookie stops working too.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'gatehouse_admin';
/** How long a session lasts unless startAdmin is told otherwise: 8 hours. */
export const DEFAULT_SESSION_LIFETIME = 8 * 60 * 60 * 1000;

const FORMAT = /^([A-Za-z0-9_-]{22})\.([1-9][0-9]{0,15})\.([A-Za-z0-9_-]{43})$/;

export class Sessions {
  /** In milliseconds. */
  readonly lifetime: number;
  readonly #now: () => number;
  readonly #key = randomBytes(32);
  /** Revoked session id → when it expires; dropped after that. */
  readonly #revoked = new Map<string, number>();

  constructor(lifetime = DEFAULT_SESSION_LIFETIME, now: () => number = Date.now) {
    if (!Number.isSafeInteger(lifetime) || lifetime < 1000)
      throw new RangeError('session lifetime must be a whole number of milliseconds, 1000 or more');
    this.lifetime = lifetime;
    this.#now = now;
  }

  /** A new session's cookie value. */
  issue(): string {
    const id = randomBytes(16).toString('base64url');
    const body = `${id}.${Math.floor(this.#now()) + this.lifetime}`;
    return `${body}.${this.#mac(body)}`;
  }

  /** The session id and expiry when `value` is one this process issued, unexpired and not revoked. */
  check(value: string): { id: string; expires: number } | null {
    const m = FORMAT.exec(value);
    if (m === null) return null;
    const [, id, exp, mac] = m;
    // Both are 43 base64url characters (the pattern above), so the comparison takes constant time.
    if (!timingSafeEqual(Buffer.from(mac), Buffer.from(this.#mac(`${id}.${exp}`)))) return null;
    const expires = Number(exp);
    if (this.#now() >= expires || this.#revoked.has(id)) return null;
    return { id, expires };
  }

  /** Ends the session in `value`, if it is a live one. */
  revoke(value: string): boolean {
    const s = this.check(value);
    if (s === null) return false;
    const now = this.#now();
    for (const [id, expires] of this.#revoked) if (now >= expires) this.#revoked.delete(id);
    this.#revoked.set(s.id, s.expires);
    return true;
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#key).update(body).digest('base64url');
  }
}

/** The values of every `name` cookie in a Cookie header. */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (header === undefined) return [];
  const out: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim());
  }
  return out;
}
