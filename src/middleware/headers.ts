// `headers`: set, add or remove request headers (sent upstream) and response headers (sent to the
// client). Values may hold placeholders ({client.ip}, {geo.country}, {request.id}, {time.msec},
// {route}, {match.1}, ...: pipeline/template.ts), evaluated per request; plain values cost nothing.
import type { HeadersConfig } from '../config/schema.ts';
import { removeHeader, setHeader } from '../pipeline/headers.ts';
import { compileTemplate, hasPlaceholders, type Template } from '../pipeline/template.ts';
import type { Middleware, MiddlewareKind } from './types.ts';

type Ops = NonNullable<HeadersConfig['request']>;
type Value = string | Template;

/** Header names lower-cased and values compiled once, when the Plan is compiled. */
function compileOps(ops: Ops) {
  const lower = (r: Record<string, string> | undefined): [string, Value][] =>
    Object.entries(r ?? {}).map(([k, v]) => [k.toLowerCase(), hasPlaceholders(v) ? compileTemplate(v) : v]);
  return { set: lower(ops.set), add: lower(ops.add), remove: (ops.remove ?? []).map((h) => h.toLowerCase()) };
}

export const headers: MiddlewareKind<HeadersConfig> = {
  create(name, config) {
    const m: Middleware = { name };
    if (config.request) {
      const { set, add, remove } = compileOps(config.request);
      m.onUpstreamRequest = (ctx, req) => {
        for (const h of remove) removeHeader(req.headers, h);
        for (const [k, v] of set) setHeader(req.headers, k, typeof v === 'string' ? v : v(ctx));
        for (const [k, v] of add) req.headers.push(k, typeof v === 'string' ? v : v(ctx));
      };
    }
    if (config.response) {
      const { set, add, remove } = compileOps(config.response);
      m.onResponse = (ctx, head) => {
        for (const h of remove) delete head.headers[h];
        for (const [k, v] of set) head.headers[k] = typeof v === 'string' ? v : v(ctx);
        for (const [k, t] of add) {
          const v = typeof t === 'string' ? t : t(ctx);
          const cur = head.headers[k];
          head.headers[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
        }
      };
    }
    return m;
  },
};
