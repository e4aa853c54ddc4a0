// Routes answered by Gatehouse itself: `redirect` and `respond`. They run after the request stage,
// like a proxied route, so middlewares (auth, rate limits, headers, compress) apply to them too.
import type { RouteConfig } from '../config/schema.ts';
import { responseHooks } from '../pipeline/answer.ts';
import type { RequestContext, ResponseHead } from '../pipeline/context.ts';
import type { OutHeaders } from '../pipeline/responder.ts';
import type { Runtime } from '../pipeline/runtime.ts';
import { compileTemplate } from '../pipeline/template.ts';

/** Answers a request on a route without an upstream. */
export type LocalHandler = (rt: Runtime, ctx: RequestContext) => void;

export function redirectHandler(cfg: NonNullable<RouteConfig['redirect']>): LocalHandler {
  const to = compileTemplate(cfg.to);
  const status = cfg.status;
  return (_rt, ctx) => {
    const head: ResponseHead = {
      status,
      headers: { location: to(ctx), 'content-length': '0', 'x-request-id': ctx.id },
    };
    responseHooks(ctx, head);
    ctx.res.writeHead(head.status, head.headers);
    ctx.res.end();
  };
}

export function respondHandler(cfg: NonNullable<RouteConfig['respond']>): LocalHandler {
  const body = compileTemplate(cfg.body ?? '');
  const headers = Object.entries(cfg.headers ?? {}).map(
    ([k, v]) => [k.toLowerCase(), compileTemplate(v)] as const,
  );
  const status = cfg.status;
  const noBody = status === 204 || status === 304 || status < 200;
  return (_rt, ctx) => {
    const h: OutHeaders = { 'x-request-id': ctx.id };
    for (const [k, t] of headers) h[k] = t(ctx);
    let text = '';
    if (!noBody) {
      text = body(ctx);
      h['content-type'] = cfg.contentType;
      h['content-length'] = String(Buffer.byteLength(text));
    }
    const rh: ResponseHead = { status, headers: h as ResponseHead['headers'] };
    responseHooks(ctx, rh);
    const head = ctx.req.method === 'HEAD';
    // Before end(): the log stage may run inside it.
    ctx.bytesOut = noBody || head ? 0 : Buffer.byteLength(text);
    ctx.res.writeHead(rh.status, rh.headers);
    ctx.res.end(noBody || head ? undefined : text);
  };
}
