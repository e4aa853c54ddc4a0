// `cors`: Cross-Origin Resource Sharing at the edge (the Fetch standard's CORS protocol).
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here, without the
// upstream: 204 with the allowed methods and headers when the origin, the method and every requested
// header are allowed, else 403. On every other answer for an allowed origin — the upstream's and
// Gatehouse's own (errors included, so a page's script can read why it failed) — the origin is
// echoed exactly (never `*` with credentials), with Vary: Origin. Whatever CORS fields the upstream
// sent are replaced, so an upstream's `Access-Control-Allow-Origin: *` cannot widen the policy.
import type { CorsConfig } from '../config/schema.ts';
import type { ResponseHead } from '../pipeline/context.ts';
import type { LocalResponse, MiddlewareKind } from './types.ts';

const ACAO = 'access-control-allow-origin';
const CORS_FIELDS = [
  ACAO,
  'access-control-allow-credentials',
  'access-control-expose-headers',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-max-age',
];
/** Request headers a page may always send (Fetch's CORS-safelisted request headers). */
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language', 'content-type', 'range']);

function addVary(head: ResponseHead, name: string): void {
  const cur = head.headers.vary;
  const list = cur === undefined ? '' : Array.isArray(cur) ? cur.join(', ') : cur;
  if (list.split(',').some((v) => v.trim().toLowerCase() === name.toLowerCase() || v.trim() === '*')) return;
  head.headers.vary = list === '' ? name : `${list}, ${name}`;
}

export const cors: MiddlewareKind<CorsConfig> = {
  create(name, config) {
    const any = config.origins.includes('*');
    const origins = new Set(
      config.origins.filter((o) => o !== '*').map((o) => o.toLowerCase().replace(/\/$/, '')),
    );
    const methods = new Set(config.methods);
    const allowedHeaders = new Set(config.headers.map((h) => h.toLowerCase()));
    const methodList = config.methods.join(', ');
    const maxAge = String(Math.floor(config.maxAge / 1000));
    const expose = config.exposeHeaders.join(', ');
    const allowed = (origin: string) => any || origins.has(origin.toLowerCase());
    /** What Access-Control-Allow-Origin says for an allowed origin. */
    const allowOrigin = (origin: string) => (any && !config.credentials ? '*' : origin);

    return {
      name,
      onRequest(ctx): LocalResponse | undefined {
        const h = ctx.req.headers;
        const origin = h.origin;
        const requested = h['access-control-request-method'];
        if (ctx.req.method !== 'OPTIONS' || origin === undefined || requested === undefined) return undefined;
        // A preflight: answered here.
        const reqHeaders = String(h['access-control-request-headers'] ?? '')
          .split(',')
          .map((x) => x.trim().toLowerCase())
          .filter((x) => x !== '');
        const ok =
          allowed(origin) &&
          methods.has(String(requested)) &&
          reqHeaders.every((x) => SAFELISTED.has(x) || allowedHeaders.has(x));
        if (!ok) return { status: 403, reason: 'forbidden', headers: { vary: 'Origin' } };
        const headers: Record<string, string> = {
          [ACAO]: allowOrigin(origin),
          'access-control-allow-methods': methodList,
          'access-control-max-age': maxAge,
          vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
        };
        if (reqHeaders.length > 0) headers['access-control-allow-headers'] = reqHeaders.join(', ');
        if (config.credentials) headers['access-control-allow-credentials'] = 'true';
        return { status: 204, headers };
      },
      onResponse(ctx, head) {
        // A preflight was answered in onRequest, with its fields (or refused without any).
        if (ctx.req.method === 'OPTIONS' && ctx.req.headers['access-control-request-method'] !== undefined)
          return;
        for (const f of CORS_FIELDS) delete head.headers[f];
        const origin = ctx.req.headers.origin;
        if (!(any && !config.credentials)) addVary(head, 'Origin');
        if (origin === undefined || !allowed(origin)) return;
        head.headers[ACAO] = allowOrigin(origin);
        if (config.credentials) head.headers['access-control-allow-credentials'] = 'true';
        if (expose !== '') head.headers['access-control-expose-headers'] = expose;
      },
    };
  },
};
