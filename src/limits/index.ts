// Abuse limits (docs/security.md): connection caps per listener and per client address, the
// minimum request body rate, the per-client upstream budget, and automatic bans. One `Limits` per
// running Gatehouse, made from the `limits` config (a restart key) and kept across reloads, so that
// a reload neither pardons a banned client nor forgets what is in flight.
//
// Where each piece sits on the request path:
//   accept (socket)   gateFor() → gate.ts: server.maxConnections, then banned / per-client cap
//   accept (request)  refuseBanned() (run.ts): 403 banned, by ctx.clientIp (behind trusted proxies too)
//   send              enterUpstream() (forward.ts; run.ts before splice for tunnels): 429
//                     client_upstream_limit
//   send              watchBodyRate() (forward.ts): 408 request_timeout, body too slow
//   log               noteOffence() (run.ts finish): refusals that count towards a ban; the
//                     limits' own refusals are reported where they are made
import type { LimitsConfig } from '../config/schema.ts';
import { fail, respondLocal } from '../pipeline/answer.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { ProxyError } from '../pipeline/errors.ts';
import type { ListenerSlot, Runtime } from '../pipeline/runtime.ts';
import type { Upstream } from '../upstream/upstream.ts';
import { BanList, type BanListOptions, type OffenceKind } from './ban.ts';
import { BodyRateWatcher } from './bodyRate.ts';
import { ClientUpstreamBudget } from './clientBudget.ts';
import { ConnectionGate } from './gate.ts';

export type { Ban, BanInfo, OffenceKind } from './ban.ts';
export { BanList } from './ban.ts';
export { ConnectionGate, gateConnections, gatedListeners } from './gate.ts';

/** A metric family for /metrics: the admin registry wraps each in a view computed at scrape time. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: () => { labels: Record<string, string>; value: number }[];
}

const CLIENT_UPSTREAM_LIMIT = {
  status: 429,
  reason: 'client_upstream_limit',
  headers: Object.freeze({ 'retry-after': '1' }) as Record<string, string>,
};
/**
 * The same for a request whose body has not been read: its HTTP/1.1 connection cannot be reused
 * (node:http honours the header; our engine closes such a connection anyway; HTTP/2 drops it).
 */
const CLIENT_UPSTREAM_LIMIT_CLOSE = {
  ...CLIENT_UPSTREAM_LIMIT,
  headers: Object.freeze({ 'retry-after': '1', connection: 'close' }) as Record<string, string>,
};

export class Limits {
  readonly config: LimitsConfig;
  /** null without limits.ban. */
  readonly bans: BanList | null;
  /** null when upstreamConnectionsPerClient is 0. */
  readonly clientUpstream: ClientUpstreamBudget | null;
  /** null when minRequestBodyRate is 0. */
  readonly bodyRate: BodyRateWatcher | null;
  /** One gate per listener, by name. */
  readonly gates = new Map<string, ConnectionGate>();
  /** 403 banned in the request stage, by listener. */
  readonly bannedRequests = new Map<string, number>();
  /** 408 for a body below minRequestBodyRate, by listener. */
  readonly slowBodies = new Map<string, number>();

  constructor(config: LimitsConfig, opts: BanListOptions = {}) {
    this.config = config;
    const ban = config.ban;
    this.bans = ban === undefined ? null : new BanList(ban, opts);
    this.clientUpstream =
      config.upstreamConnectionsPerClient > 0
        ? new ClientUpstreamBudget(config.upstreamConnectionsPerClient)
        : null;
    this.bodyRate =
      config.minRequestBodyRate > 0
        ? new BodyRateWatcher(
            { rate: config.minRequestBodyRate, grace: config.minRequestBodyRateGrace },
            this.#tooSlow,
          )
        : null;
  }

  /** The gate of a listener's accepting server (made on first use, one per listener name). */
  gateFor(slot: ListenerSlot): ConnectionGate {
    const name = slot.plan.name;
    let g = this.gates.get(name);
    if (g === undefined) {
      g = new ConnectionGate(name, slot, this.config, this.bans);
      this.gates.set(name, g);
    }
    return g;
  }

  /** Records an offence by a client address (see OffenceKind); a no-op without limits.ban. */
  offence(ip: string, kind: OffenceKind): void {
    this.bans?.offence(ip, kind);
  }

  isBanned(ip: string): boolean {
    return this.bans?.isBanned(ip) === true;
  }

  /** Stops the body-rate sweep (Gatehouse.close). */
  close(): void {
    this.bodyRate?.stop();
  }

  /** Counters and gauges for /metrics (names and labels: docs/admin-api.md). */
  metrics(): MetricFamily[] {
    const gates = () => [...this.gates.values()];
    const out: MetricFamily[] = [
      {
        name: 'gatehouse_connections_refused_total',
        help: 'Client connections closed as they were accepted, by listener and reason (max_connections, max_connections_per_client, banned).',
        type: 'counter',
        values: () =>
          gates().flatMap((g) => [
            { labels: { listener: g.listener, reason: 'max_connections' }, value: g.refusedMax },
            {
              labels: { listener: g.listener, reason: 'max_connections_per_client' },
              value: g.refusedPerClient,
            },
            { labels: { listener: g.listener, reason: 'banned' }, value: g.refusedBanned },
          ]),
      },
      {
        name: 'gatehouse_tls_handshake_timeouts_total',
        help: 'TLS connections closed because their handshake did not finish within limits.tlsHandshakeTimeout.',
        type: 'counter',
        values: () => gates().map((g) => ({ labels: { listener: g.listener }, value: g.handshakeTimeouts })),
      },
      {
        name: 'gatehouse_request_body_too_slow_total',
        help: 'Requests answered 408 because their body arrived slower than limits.minRequestBodyRate.',
        type: 'counter',
        values: () => byName(this.slowBodies, 'listener'),
      },
      {
        name: 'gatehouse_client_upstream_limit_total',
        help: 'Requests answered 429 client_upstream_limit (limits.upstreamConnectionsPerClient), by upstream.',
        type: 'counter',
        values: () => (this.clientUpstream === null ? [] : byName(this.clientUpstream.refused, 'upstream')),
      },
    ];
    const bans = this.bans;
    if (bans !== null) {
      out.push(
        {
          name: 'gatehouse_requests_banned_total',
          help: 'Requests answered 403 banned (clients behind a trusted proxy, or banned during a connection), by listener.',
          type: 'counter',
          values: () => byName(this.bannedRequests, 'listener'),
        },
        {
          name: 'gatehouse_bans_active',
          help: 'Client addresses banned now.',
          type: 'gauge',
          values: () => [{ labels: {}, value: bans.active }],
        },
        {
          name: 'gatehouse_bans_total',
          help: 'Bans started (automatic and through the admin API).',
          type: 'counter',
          values: () => [{ labels: {}, value: bans.total }],
        },
        {
          name: 'gatehouse_ban_offences_total',
          help: 'Offences reported towards bans, by kind.',
          type: 'counter',
          values: () => byName(bans.offences, 'kind'),
        },
        {
          name: 'gatehouse_ban_tracked_clients',
          help: 'Client addresses with recent offences being tracked (an LRU, bounded).',
          type: 'gauge',
          values: () => [{ labels: {}, value: bans.tracked }],
        },
      );
    }
    return out;
  }

  /** A body too slow for minRequestBodyRate: 408 and the connection closed, as bodyTimeout does. */
  readonly #tooSlow = (rt: Runtime, ctx: RequestContext, bytes: number, ms: number): void => {
    bump(this.slowBodies, ctx.listener);
    this.offence(ctx.clientIp, 'body_too_slow');
    // Answer first (the connection closes after it), then stop the upstream request once the answer
    // has reached the client: aborting destroys the half-read body, and with it the socket.
    fail(
      rt,
      ctx,
      new ProxyError('request_timeout', `request body too slow: ${bytes} bytes in ${Math.round(ms)} ms`),
      true,
    );
    const abort = ctx.abortUpstream;
    if (abort) ctx.res.onFinish(abort);
  };
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

function byName(m: Map<string, number>, label: string): { labels: Record<string, string>; value: number }[] {
  return [...m].map(([k, value]) => ({ labels: { [label]: k }, value }));
}

// ---------------------------------------------------------------- the running Gatehouse's Limits

/** The running Gatehouse's Limits (made once by Gatehouse.start, kept across reloads). */
export function limitsOf(rt: Runtime): Limits {
  return rt.limits;
}

/**
 * The gate for a listener's accepting server (its counters exist even when it checks nothing;
 * gateConnections puts it in front of the server only where a limit applies).
 */
export function gateFor(rt: Runtime, slot: ListenerSlot): ConnectionGate {
  return limitsOf(rt).gateFor(slot);
}

/**
 * The request stage's ban check, for run.ts right after identifyClient(): a banned client address
 * (ctx.clientIp, so clients behind a trusted proxy too, and a client banned while its connection
 * was open) gets 403 banned and its connection closed. true: answered, stop.
 */
export function refuseBanned(rt: Runtime, ctx: RequestContext): boolean {
  const limits = limitsOf(rt);
  const bans = limits.bans;
  if (bans === null || !bans.isBanned(ctx.clientIp)) return false;
  bump(limits.bannedRequests, ctx.listener);
  fail(rt, ctx, 'banned', true);
  if (!ctx.peerTrusted) {
    // The peer itself is banned: its HTTP/2 connection goes too (GOAWAY; streams under way finish).
    const session = (ctx.req as { stream?: { session?: { close(): void; closed?: boolean } } }).stream
      ?.session;
    if (session !== undefined && session.closed !== true) session.close();
  }
  return true;
}

/**
 * The per-client upstream budget, before an exchange (forward.ts) or a tunnel (run.ts, before
 * splice) starts:
 * true and a slot taken until the request's responder closes, or false after a 429
 * client_upstream_limit with Retry-After: 1 (an offence towards a ban).
 */
export function enterUpstream(rt: Runtime, ctx: RequestContext): boolean {
  const limits = limitsOf(rt);
  const budget = limits.clientUpstream;
  if (budget === null) return true;
  const upstream = (ctx.upstream as Upstream).name;
  const ip = ctx.clientIp;
  if (!budget.acquire(upstream, ip)) {
    limits.offence(ip, 'client_upstream_limit');
    const h = ctx.req.headers;
    const body =
      (h['content-length'] !== undefined && h['content-length'] !== '0') ||
      h['transfer-encoding'] !== undefined;
    respondLocal(
      rt,
      ctx,
      body && !ctx.req.readableEnded ? CLIENT_UPSTREAM_LIMIT_CLOSE : CLIENT_UPSTREAM_LIMIT,
    );
    return false;
  }
  ctx.res.onClose(() => budget.release(upstream, ip));
  return true;
}

/** Watches a request body that is still arriving against minRequestBodyRate (forward.ts). */
export function watchBodyRate(rt: Runtime, ctx: RequestContext): void {
  const watcher = limitsOf(rt).bodyRate;
  if (watcher === null) return;
  watcher.watch(rt, ctx);
}

/**
 * The offence a finished request counts as, or null: a rate-limit or WAF refusal, or a 401 to a
 * request that carried credentials (a failed login; a 401 asking for credentials is not one).
 * client_upstream_limit, body_too_slow and max_connections_per_client are reported where they are
 * made (here), not from the answer.
 */
export function offenceOf(ctx: RequestContext): OffenceKind | null {
  const reason = ctx.error?.reason;
  if (reason === 'rate_limited' || reason === 'waf_blocked') return reason;
  if (reason === 'unauthorized') {
    const h = ctx.req.headers;
    if (h.authorization !== undefined || h['proxy-authorization'] !== undefined) return 'login_failed';
  }
  return null;
}

/** The log stage's report (run.ts finish): counts the request's refusal towards a ban, if it is an offence. */
export function noteOffence(rt: Runtime, ctx: RequestContext): void {
  if (ctx.error === undefined) return;
  const bans = limitsOf(rt).bans;
  if (bans === null) return;
  const kind = offenceOf(ctx);
  if (kind !== null) bans.offence(ctx.clientIp, kind);
}
