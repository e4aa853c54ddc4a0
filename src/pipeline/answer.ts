// Gatehouse's own answers on the request path: an error (through the one error writer) and a
// middleware's local response (401, 403, 429, a redirect, ...). Both record what the log stage
// reports.
import type { LocalResponse, Middleware } from '../middleware/types.ts';
import type { RequestContext, ResponseHead } from './context.ts';
import { ProxyError, REASONS, type Reason } from './errors.ts';
import { type ErrorAnswer, respondError } from './respond.ts';
import type { Runtime } from './runtime.ts';

/** Ends the request with an error page; `close` when the connection cannot be reused. */
export function fail(rt: Runtime, ctx: RequestContext, reason: Reason | ProxyError, close: boolean): void {
  const err = typeof reason === 'string' ? new ProxyError(reason) : reason;
  ctx.error = err;
  respondError(ctx.res, err, answerFor(rt, ctx, err, close));
}

function answerFor(
  rt: Runtime,
  ctx: RequestContext,
  err: ProxyError,
  close: boolean,
  extra?: Record<string, string>,
): ErrorAnswer {
  const hooks = ctx.route?.onResponse ?? null;
  return {
    requestId: ctx.id,
    accept: ctx.req.headers.accept,
    proxyName: rt.via,
    close,
    head: ctx.req.method === 'HEAD',
    extra,
    custom: customPage(ctx, err),
    counter: ctx,
    onHead: hooks === null ? undefined : (head) => runHooks(hooks, ctx, head),
  };
}

/** Answers with a middleware's local response (401, 403, 429, redirect, ...). */
export function respondLocal(rt: Runtime, ctx: RequestContext, r: LocalResponse): void {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return;
  const reason = r.reason !== undefined && r.reason in REASONS ? (r.reason as Reason) : undefined;
  if (r.body === undefined && reason !== undefined) {
    // A refusal without a body of its own gets the standard error page, with the middleware's headers.
    ctx.error = new ProxyError(reason, undefined, { source: 'downstream' });
    respondError(res, ctx.error, answerFor(rt, ctx, ctx.error, ctx.upgrade !== null, r.headers));
    return;
  }
  if (reason !== undefined) ctx.error = new ProxyError(reason, undefined, { source: 'downstream' });
  // A refusal with a body of its own (fault injection) still gets the operator's page for its status.
  const page = reason === undefined ? undefined : ctx.route?.errorPages?.render(r.status, reason, ctx.id);
  const body = page ?? r.body ?? '';
  if (page !== undefined) r = { ...r, headers: { ...r.headers, 'content-type': 'text/html; charset=utf-8' } };
  const noBody = r.status === 204 || r.status === 304 || r.status < 200;
  const head: ResponseHead = {
    status: r.status,
    headers: noBody
      ? { ...r.headers, 'x-request-id': ctx.id }
      : { ...r.headers, 'x-request-id': ctx.id, 'content-length': String(Buffer.byteLength(body)) },
  };
  responseHooks(ctx, head);
  head.status = r.status; // hooks change the headers of Gatehouse's own answers, not their status
  const skip = noBody || ctx.req.method === 'HEAD';
  // Before end(): a body filter (compress) may count the bytes it really sent, and the log line
  // may be written inside end().
  ctx.bytesOut = skip ? 0 : Buffer.byteLength(body);
  res.writeHead(head.status, head.headers, ctx.upgrade !== null);
  res.end(skip ? undefined : body);
}

/** The operator's error page for this answer (the route's, else the top-level one), if any. */
function customPage(ctx: RequestContext, err: ProxyError): string | undefined {
  const pages = ctx.route !== undefined ? ctx.route.errorPages : ctx.plan.errorPages;
  return pages?.render(err.status, err.reason, ctx.id);
}

function runHooks(hooks: readonly Middleware[], ctx: RequestContext, head: ResponseHead): void {
  for (const m of hooks) m.onResponse?.(ctx, head);
}

/** The route's onResponse hooks (already in reverse order) on an answer Gatehouse makes itself, as an upstream's answer gets them. */
export function responseHooks(ctx: RequestContext, head: ResponseHead): void {
  const hooks = ctx.route?.onResponse;
  if (hooks != null) runHooks(hooks, ctx, head);
}
