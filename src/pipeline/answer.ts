// Gatehouse's own answers on the request path: an error (through the one error writer) and a
// middleware's local response (401, 403, 429, a redirect, ...). Both record what the log stage
// reports.
import type { LocalResponse } from '../middleware/types.ts';
import type { RequestContext, ResponseHead } from './context.ts';
import { ProxyError, REASONS, type Reason } from './errors.ts';
import { respondError } from './respond.ts';
import type { Runtime } from './runtime.ts';

/** Ends the request with an error page; `close` when the connection cannot be reused. */
export function fail(rt: Runtime, ctx: RequestContext, reason: Reason | ProxyError, close: boolean): void {
  const err = typeof reason === 'string' ? new ProxyError(reason) : reason;
  ctx.error = err;
  respondError(
    ctx.res,
    err,
    ctx.id,
    ctx.req.headers.accept,
    rt.via,
    close,
    ctx.req.method === 'HEAD',
    undefined,
    customPage(ctx, err),
    ctx,
  );
}

/** The operator's error page for this answer (the route's, else the top-level one), if any. */
function customPage(ctx: RequestContext, err: ProxyError): string | undefined {
  const pages = ctx.route !== undefined ? ctx.route.errorPages : ctx.plan.errorPages;
  return pages?.render(err.status, err.reason, ctx.id);
}

/** Answers with a middleware's local response (401, 403, 429, redirect, ...). */
export function respondLocal(rt: Runtime, ctx: RequestContext, r: LocalResponse): void {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return;
  const reason = r.reason !== undefined && r.reason in REASONS ? (r.reason as Reason) : undefined;
  if (r.body === undefined && reason !== undefined) {
    // A refusal without a body of its own gets the standard error page, with the middleware's headers.
    ctx.error = new ProxyError(reason, undefined, { source: 'downstream' });
    respondError(
      res,
      ctx.error,
      ctx.id,
      ctx.req.headers.accept,
      rt.via,
      ctx.upgrade !== null,
      ctx.req.method === 'HEAD',
      r.headers,
      customPage(ctx, ctx.error),
      ctx,
    );
    return;
  }
  if (reason !== undefined) ctx.error = new ProxyError(reason, undefined, { source: 'downstream' });
  const body = r.body ?? '';
  res.writeHead(
    r.status,
    { ...r.headers, 'x-request-id': ctx.id, 'content-length': String(Buffer.byteLength(body)) },
    ctx.upgrade !== null,
  );
  const head = ctx.req.method === 'HEAD';
  // Before end(): a body filter (compress) may count the bytes it really sent, and the log line
  // may be written inside end().
  ctx.bytesOut = head ? 0 : Buffer.byteLength(body);
  res.end(head ? undefined : body);
}

/** The route's onResponse hooks (already in reverse order) on an answer Gatehouse makes itself, as an upstream's answer gets them. */
export function responseHooks(ctx: RequestContext, head: ResponseHead): void {
  const hooks = ctx.route?.onResponse;
  if (hooks != null) for (const m of hooks) m.onResponse?.(ctx, head);
}
