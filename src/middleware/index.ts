// The kind → factory table: the config key under `middlewares.<name>` picks the factory.
import type { MiddlewareConfig } from '../config/schema.ts';
import { apiKey } from './apiKey.ts';
import { basicAuth } from './basicAuth.ts';
import { cache } from './cache.ts';
import { compress } from './compress.ts';
import { cors } from './cors.ts';
import { faultInjection } from './faultInjection.ts';
import { forwardAuth } from './forwardAuth.ts';
import { headers } from './headers.ts';
import { ipFilter } from './ipFilter.ts';
import { jwt } from './jwt.ts';
import { rateLimit } from './rateLimit.ts';
import { securityHeaders } from './securityHeaders.ts';
import type { BuildEnv, Middleware, MiddlewareKind } from './types.ts';
import { waf } from './waf.ts';

export const middlewareKinds = {
  rateLimit,
  headers,
  ipFilter,
  cache,
  compress,
  faultInjection,
  basicAuth,
  jwt,
  forwardAuth,
  apiKey,
  waf,
  cors,
  securityHeaders,
} satisfies {
  [K in keyof MiddlewareConfig]-?: MiddlewareKind<NonNullable<MiddlewareConfig[K]>>;
};

export function createMiddleware(name: string, config: MiddlewareConfig, env: BuildEnv): Middleware {
  const kind = Object.keys(config)[0] as keyof typeof middlewareKinds;
  const factory = middlewareKinds[kind] as MiddlewareKind<unknown>;
  return factory.create(name, config[kind], env);
}
