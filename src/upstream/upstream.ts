// An upstream: its targets (each with a pool), the balancer over them, and what a request needs to
// reach them (timeouts, host header policy, hash key). Built once per Plan.
import type { UpstreamConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { balancers } from './balancers/index.ts';
import type { Balancer, PickInput } from './balancers/types.ts';
import { type HealthListener, startActiveChecks } from './health/active.ts';
import { Target } from './target.ts';

export class Upstream {
  readonly name: string;
  readonly targets: readonly Target[];
  readonly balancer: Balancer;
  readonly passHostHeader: boolean;
  readonly responseTimeout: number;
  readonly idleTimeout: number;
  readonly loadBalancer: string;
  readonly hashValue: ((ctx: RequestContext) => string | undefined) | undefined;
  readonly healthCheck: UpstreamConfig['healthCheck'];
  #stopChecks: (() => void) | undefined;

  constructor(name: string, cfg: UpstreamConfig) {
    this.name = name;
    this.loadBalancer = cfg.loadBalancer;
    this.passHostHeader = cfg.passHostHeader;
    this.responseTimeout = cfg.timeouts.response;
    this.idleTimeout = cfg.timeouts.idle;
    this.targets = cfg.targets.map(
      (t) =>
        new Target(t.url, {
          weight: t.weight,
          maxConnections: cfg.maxConnectionsPerTarget,
          connectTimeout: cfg.timeouts.connect,
          headersTimeout: cfg.timeouts.response,
          bodyTimeout: cfg.timeouts.idle,
          keepAliveTimeout: cfg.timeouts.keepAlive,
        }),
    );
    this.balancer = balancers[cfg.loadBalancer].create(this.targets);
    this.hashValue =
      cfg.loadBalancer === 'consistentHash' ? hashKeyFunction(cfg.hashKey ?? 'path') : undefined;
    this.healthCheck = cfg.healthCheck;
  }

  /** Starts the active health checks, if configured; they stop with close(). */
  startHealthChecks(onChange: HealthListener): void {
    if (this.healthCheck && !this.#stopChecks)
      this.#stopChecks = startActiveChecks(this.targets, this.healthCheck, onChange);
  }

  pick(ctx: RequestContext, exclude?: ReadonlySet<Target>): Target | undefined {
    const input: PickInput = {
      clientIp: ctx.clientIp,
      hashValue: this.hashValue === undefined ? undefined : this.hashValue(ctx),
      path: ctx.path,
    };
    return this.balancer.pick(input, exclude);
  }

  async close(): Promise<void> {
    this.#stopChecks?.();
    await Promise.all(this.targets.map((t) => t.close()));
  }
}

/** `header:x-user`, `cookie:session`, `query:id`, `clientIp`, `path`; a missing value hashes the path. */
export function hashKeyFunction(key: string): (ctx: RequestContext) => string | undefined {
  if (key === 'path') return () => undefined;
  if (key === 'clientIp') return (ctx) => ctx.clientIp;
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const name = key.slice(colon + 1);
  if (kind === 'header') {
    const h = name.toLowerCase();
    return (ctx) => {
      const v = ctx.req.headers[h];
      return Array.isArray(v) ? v.join(',') : v;
    };
  }
  if (kind === 'cookie') {
    const prefix = `${name}=`;
    return (ctx) => {
      const cookie = ctx.req.headers.cookie;
      if (cookie === undefined) return undefined;
      for (const part of cookie.split(';')) {
        const p = part.trim();
        if (p.startsWith(prefix)) return p.slice(prefix.length);
      }
      return undefined;
    };
  }
  return (ctx) => new URLSearchParams(ctx.query).get(name) ?? undefined;
}
