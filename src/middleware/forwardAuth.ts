// `forwardAuth`: ask an auth service about each request, as Traefik's ForwardAuth and nginx's
// auth_request do.
//
// - The service gets a GET to its URL with X-Forwarded-Method, X-Forwarded-Uri (the normalised path
//   and query Gatehouse routed on), X-Forwarded-For (the client address as Gatehouse resolved it,
//   after trusted proxies), X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id, and the client's
//   requestHeaders (authorization and cookie by default). Never the request body.
// - A 2xx answer lets the request through; the copyHeaders of that answer go upstream, after the
//   same names have been removed from what the client sent (a client cannot forge x-user).
// - Any other answer is relayed to the client: its status, its headers (WWW-Authenticate, Location,
//   Set-Cookie, ...; hop-by-hop ones and the framing removed) and its body up to MAX_RELAYED_BODY
//   (a longer, compressed or non-UTF-8 body is left out, with its Content-Type). Logged as `unauthorized` (`forbidden` for 403, `auth_unavailable`
//   for a 5xx).
// - No answer within `timeout`, or the service unreachable: 503 auth_unavailable (fail closed).
// One undici Pool per middleware, kept alive between requests, closed with the Plan.
import { Pool } from 'undici';
import { varsOf } from '../auth/common.ts';
import type { ForwardAuthConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { HOP_BY_HOP } from '../pipeline/forwarding.ts';
import { removeHeader } from '../pipeline/headers.ts';
import type { LocalResponse, Middleware, MiddlewareKind } from './types.ts';

/** The largest body of a refusal relayed to the client. */
export const MAX_RELAYED_BODY = 64 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Connections to the auth service at most, per middleware. */
const CONNECTIONS = 64;

/** Answer headers never relayed: the connection's own, the framing, and what Gatehouse sets itself. */
const NOT_RELAYED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  'content-length',
  'x-request-id',
  'date',
  'proxy-status',
]);

export const forwardAuth: MiddlewareKind<ForwardAuthConfig> = {
  create(name, config, env) {
    const STATE = Symbol(`forwardAuth:${name}`);
    const url = new URL(config.url);
    const path = url.pathname + url.search;
    const pool = new Pool(url.origin, {
      connections: CONNECTIONS,
      connect: { timeout: config.timeout },
      keepAliveTimeout: 30_000,
    });
    env.onClose(() => void pool.close().catch(() => {}));
    const requestHeaders = config.requestHeaders.map((h) => h.toLowerCase());
    const copyHeaders = config.copyHeaders.map((h) => h.toLowerCase());
    const unavailable: LocalResponse = {
      status: 503,
      reason: 'auth_unavailable',
      headers: { 'retry-after': '1' },
    };

    const ask = async (ctx: RequestContext): Promise<LocalResponse | undefined> => {
      const req = ctx.req;
      const headers: Record<string, string | undefined> = {
        'x-forwarded-method': req.method ?? 'GET',
        'x-forwarded-proto': ctx.scheme,
        'x-forwarded-host': ctx.hostHeader,
        'x-forwarded-uri': ctx.path + ctx.query,
        'x-forwarded-for': ctx.clientIp,
        'x-request-id': ctx.id,
      };
      // Every field of each chosen name, from the raw list: Node keeps only the first Authorization
      // in req.headers, and the service must see what the upstream will (two of them, joined).
      const raw = req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toLowerCase();
        if (!requestHeaders.includes(name)) continue;
        const prev = headers[name];
        headers[name] =
          prev === undefined ? raw[i + 1] : `${prev}${name === 'cookie' ? '; ' : ', '}${raw[i + 1]}`;
      }
      const res = await pool.request({
        path,
        method: 'GET',
        headers,
        signal: AbortSignal.timeout(config.timeout),
        headersTimeout: config.timeout,
        bodyTimeout: config.timeout,
      });
      const status = res.statusCode;
      if (status >= 200 && status < 300) {
        await res.body.dump({ limit: MAX_RELAYED_BODY }).catch(() => {});
        if (copyHeaders.length > 0) {
          const copied: string[] = [];
          for (const h of copyHeaders) {
            const v = res.headers[h];
            if (v === undefined) continue;
            for (const one of Array.isArray(v) ? v : [v]) copied.push(h, one);
          }
          varsOf(ctx).set(STATE, copied);
        }
        return undefined;
      }
      // A refusal: relayed as the service made it.
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLong = false;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_RELAYED_BODY) {
          tooLong = true;
          res.body.destroy();
          break;
        }
        chunks.push(chunk as Buffer);
      }
      // LocalResponse bodies are text: a body that is not UTF-8 (or is compressed) is left out.
      let body = '';
      const encoded =
        res.headers['content-encoding'] !== undefined && res.headers['content-encoding'] !== 'identity';
      let kept = !tooLong && !encoded;
      if (kept) {
        try {
          body = utf8.decode(Buffer.concat(chunks));
        } catch {
          kept = false;
        }
      }
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(res.headers)) {
        if (v === undefined || NOT_RELAYED.has(k)) continue;
        if (!kept && (k === 'content-type' || k === 'content-encoding')) continue;
        out[k] = v;
      }
      return {
        status,
        reason: status === 403 ? 'forbidden' : status >= 500 ? 'auth_unavailable' : 'unauthorized',
        // LocalResponse headers are written as given; Set-Cookie may be a list.
        headers: out as Record<string, string>,
        body,
      };
    };

    const m: Middleware = {
      name,
      onRequest(ctx) {
        return ask(ctx).catch(() => unavailable);
      },
    };
    if (copyHeaders.length > 0) {
      m.onUpstreamRequest = (ctx, req) => {
        for (const h of copyHeaders) removeHeader(req.headers, h);
        const copied = ctx.vars?.get(STATE) as string[] | undefined;
        if (copied !== undefined) for (let i = 0; i < copied.length; i++) req.headers.push(copied[i]);
      };
    }
    return m;
  },
};
