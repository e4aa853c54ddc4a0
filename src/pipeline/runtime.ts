// What the request path needs from the running Gatehouse. `plan` is swapped by reload; each
// listener's slot is updated in place then, so a request finds its listener's part of the Plan and
// its figures by reference, never by name.

import type { Socket } from 'node:net';
import type { CacheRegistry } from '../cache/cache.ts';
import type { ListenerPlan, Plan } from '../config/compile.ts';
import type { Limits } from '../limits/index.ts';
import type { LogSink } from '../observe/accessLog.ts';
import type { ListenerStats, Stats } from '../observe/stats.ts';
import type { Tracer } from '../observe/tracing.ts';
import type { MirrorRegistry } from '../traffic/mirror.ts';
import type { RequestContext } from './context.ts';

export interface Runtime {
  plan: Plan;
  /** The Via pseudonym, stable across reloads. */
  readonly via: string;
  log: LogSink | null;
  /** Formats one access-log line (accessLog.format). */
  line: (ctx: RequestContext, now: number) => string;
  /** Live figures for /metrics and the admin API; null without an admin listener. */
  stats: Stats | null;
  tracer: Tracer | null;
  inflight: number;
  onIdle: (() => void) | null;
  /** Client sockets of open tunnels (WebSockets): outside the HTTP server's reach once upgraded. */
  readonly tunnels: Set<Socket>;
  /** The `cache` middlewares' stores, kept across reloads (purge and /metrics read them). */
  readonly caches: CacheRegistry;
  /** The mirrors' figures and recorded differences, kept across reloads. */
  readonly mirrors: MirrorRegistry;
  /** Abuse limits: connection gates, bans, the client upstream budget, the body rate (kept across reloads). */
  readonly limits: Limits;
}

/** One listener's view of the running Gatehouse: held by its server, updated on reload. */
export interface ListenerSlot {
  /** The listener's part of the current Plan. */
  plan: ListenerPlan;
  /** Its figures (kept across reloads); null without an admin listener. */
  readonly stats: ListenerStats | null;
}
