// What the authentication middlewares share: who the request was authenticated as (for the access
// log), challenge syntax, and the rules for header values they send upstream.
import type { RequestContext } from '../pipeline/context.ts';
import { HOP_BY_HOP } from '../pipeline/forwarding.ts';

/**
 * `ctx.vars` key of the authenticated identity: the basicAuth user, the JWT's `sub`, the apiKey's
 * name. The access log can show it (see authUser).
 */
export const AUTH_USER: unique symbol = Symbol('gatehouse.auth.user');

export function setAuthUser(ctx: RequestContext, user: string): void {
  varsOf(ctx).set(AUTH_USER, user);
}

/** ctx.vars, made on first use. */
export function varsOf(ctx: RequestContext): Map<symbol, unknown> {
  if (ctx.vars === undefined) ctx.vars = new Map();
  return ctx.vars;
}

/** Who the request was authenticated as, or undefined (no auth middleware, or none said). */
export function authUser(ctx: RequestContext): string | undefined {
  return ctx.vars?.get(AUTH_USER) as string | undefined;
}

/** An RFC 9110 quoted-string: `"` and `\` escaped, control characters dropped. */
export function quoted(s: string): string {
  return `"${s.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '').replace(/["\\]/g, '\\$&')}"`;
}

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * A value as it may go into an upstream header: its UTF-8 bytes as a latin1 string (what the
 * header writers put on the wire byte for byte), or undefined when it holds a control character
 * (CR, LF, NUL: a header injection) or is longer than `max` bytes.
 */
export function headerValue(s: string, max = 8192): string | undefined {
  if (CONTROL.test(s)) return undefined;
  const v = /^[\u0000-\u007f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
  return v.length > max ? undefined : v;
}

/** How many fields named `name` (lower case) the request has. */
export function countHeader(rawHeaders: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i].length === name.length && rawHeaders[i].toLowerCase() === name) n++;
  return n;
}

/**
 * Header names an auth middleware may not set or copy upstream: the connection's own, the message
 * framing, and the forwarding headers the proxy writes itself.
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  'host',
  'content-length',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
  'via',
  'x-request-id',
]);
