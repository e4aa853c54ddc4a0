// The middleware contract. A middleware is built once from its config block when a Plan is compiled
// (never per request) and may hook three stages of the request lifecycle:
//
//   request          onRequest(ctx)            in route order; returning a LocalResponse answers at once
//   upstreamRequest  onUpstreamRequest(ctx, r) in route order; may change method, path, headers
//   response         onResponse(ctx, head)     in reverse route order; may change status and headers.
//                                              Also run on Gatehouse's own answers once the route is
//                                              known (error pages, 401/403/429, redirect, respond,
//                                              static): there they change headers only.
//
// and one more for middlewares that work on response bodies (cache, compress):
//
//   respond(ctx, outer)   in route order, after the middleware's onRequest: given the responder the
//                         middlewares before it left (the client's, or a filter of theirs), returns
//                         the responder everything after it writes to (usually a ResponderFilter
//                         around `outer`), or null when it has answered the request itself through
//                         `outer` (a cache hit). Every answer after that point, the upstream's or
//                         Gatehouse's own (error pages, local responses), goes through the filters,
//                         on every transport.
//
// A route keeps, per stage, only the middlewares that have that hook (null when none), so a route
// without middlewares pays nothing for the mechanism.
import type { CacheRegistry } from '../cache/cache.ts';
import type { RedisConfig } from '../config/schema.ts';
import type { RequestContext, ResponseHead, UpstreamRequest } from '../pipeline/context.ts';
import type { Responder } from '../pipeline/responder.ts';

export interface LocalResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** The reason recorded in the access log for a refusal (`rate_limited`, `forbidden`, ...). */
  reason?: string;
}

export interface Middleware {
  readonly name: string;
  onRequest?(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined>;
  onUpstreamRequest?(ctx: RequestContext, req: UpstreamRequest): void;
  onResponse?(ctx: RequestContext, head: ResponseHead): void;
  respond?(ctx: RequestContext, outer: Responder): Responder | null | Promise<Responder | null>;
}

/** What a middleware factory may use besides its own config. */
export interface BuildEnv {
  /** Every timer or resource a middleware starts is released through this when its Plan closes. */
  onClose(fn: () => void): void;
  /** The running process's caches (kept across reloads); null when the Plan only explains or validates. */
  readonly caches: CacheRegistry | null;
  /** The top-level redis block (rateLimit store: redis leases its client from src/state/redis.ts); undefined without one. */
  readonly redis?: RedisConfig;
}

export interface MiddlewareKind<C> {
  create(name: string, config: C, env: BuildEnv): Middleware;
}
