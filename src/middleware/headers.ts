// `headers`: set, add or remove request headers (sent upstream) and response headers (sent to the client).
import type { HeadersConfig } from '../config/schema.ts';
import { removeHeader, setHeader } from '../pipeline/headers.ts';
import type { Middleware, MiddlewareKind } from './types.ts';

const lower = (r: Record<string, string> | undefined): [string, string][] =>
  Object.entries(r ?? {}).map(([k, v]) => [k.toLowerCase(), v]);

export const headers: MiddlewareKind<HeadersConfig> = {
  create(name, config) {
    const m: Middleware = { name };
    const rq = config.request;
    if (rq) {
      const set = lower(rq.set);
      const add = lower(rq.add);
      const remove = (rq.remove ?? []).map((h) => h.toLowerCase());
      m.onUpstreamRequest = (_ctx, req) => {
        for (const h of remove) removeHeader(req.headers, h);
        for (const [k, v] of set) setHeader(req.headers, k, v);
        for (const [k, v] of add) req.headers.push(k, v);
      };
    }
    const rs = config.response;
    if (rs) {
      const set = lower(rs.set);
      const add = lower(rs.add);
      const remove = (rs.remove ?? []).map((h) => h.toLowerCase());
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
