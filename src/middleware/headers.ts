// `headers`: set, add or remove request headers (sent upstream) and response headers (sent to the client).
import type { HeadersConfig } from '../config/schema.ts';
import { removeHeader, setHeader } from '../pipeline/headers.ts';
import type { Middleware, MiddlewareKind } from './types.ts';

type Ops = NonNullable<HeadersConfig['request']>;

/** Header names lower-cased once, when the Plan is compiled. */
function compileOps(ops: Ops) {
  const lower = (r: Record<string, string> | undefined): [string, string][] =>
    Object.entries(r ?? {}).map(([k, v]) => [k.toLowerCase(), v]);
  return { set: lower(ops.set), add: lower(ops.add), remove: (ops.remove ?? []).map((h) => h.toLowerCase()) };
}

export const headers: MiddlewareKind<HeadersConfig> = {
  create(name, config) {
    const m: Middleware = { name };
    if (config.request) {
      const { set, add, remove } = compileOps(config.request);
      m.onUpstreamRequest = (_ctx, req) => {
        for (const h of remove) removeHeader(req.headers, h);
        for (const [k, v] of set) setHeader(req.headers, k, v);
        for (const [k, v] of add) req.headers.push(k, v);
      };
    }
    if (config.response) {
      const { set, add, remove } = compileOps(config.response);
      m.onResponse = (_ctx, head) => {
        for (const h of remove) delete head.headers[h];
        for (const [k, v] of set) head.headers[k] = v;
        for (const [k, v] of add) {
          const cur = head.headers[k];
          head.headers[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
        }
      };
    }
    return m;
  },
};
