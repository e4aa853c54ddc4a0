// What a request is counted or hashed by: one rate-limit bucket per key (middleware rateLimit `key`),
// one ring position per key (upstream `hashKey`). Compiled once per Plan from its spec into a
// function; undefined means the request has no such value (the header, cookie or parameter is
// missing), and each caller says what that means for it.
import type { RequestContext } from '../pipeline/context.ts';

/** The key of one request, or undefined when it has none. */
export type RequestKey = (ctx: RequestContext) => string | undefined;

const clientIp: RequestKey = (ctx) => ctx.clientIp;
const path: RequestKey = (ctx) => ctx.path;
const whole: RequestKey = () => '';

/**
 * `clientIp`, `path`, `route` (one key for every request), `header:<name>` (several fields joined
 * with a comma), `cookie:<name>`, `query:<name>`. The config schema decides which each caller accepts.
 */
export function requestKey(spec: string): RequestKey {
  if (spec === 'clientIp') return clientIp;
  if (spec === 'path') return path;
  if (spec === 'route') return whole;
  const colon = spec.indexOf(':');
  const kind = spec.slice(0, colon);
  const name = spec.slice(colon + 1);
  if (kind === 'header') {
    const h = name.toLowerCase();
    return (ctx) => {
      const v = ctx.req.headers[h];
      return Array.isArray(v) ? v.join(',') : v;
    };
  }
  if (kind === 'cookie') {
    const prefix = `${name}=`;
    return (ctx) => {
      const cookie = ctx.req.headers.cookie;
      if (cookie === undefined) return undefined;
      for (const part of cookie.split(';')) {
        const p = part.trim();
        if (p.startsWith(prefix)) return p.slice(prefix.length);
      }
      return undefined;
    };
  }
  if (kind === 'query') return (ctx) => new URLSearchParams(ctx.query).get(name) ?? undefined;
  throw new Error(`unknown request key ${JSON.stringify(spec)}`);
}
