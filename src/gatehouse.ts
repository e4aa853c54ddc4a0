// A running Gatehouse: its listeners, the current Plan, the access log. `reload` swaps the Plan as
// one reference; requests already running finish on the Plan they started with, which is closed
// once the last of them is done.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as NetServer } from 'node:net';
import { type AdminServer, startAdmin } from './admin/server.ts';
import { CacheRegistry } from './cache/cache.ts';
import { compile, type Plan } from './config/compile.ts';
import { splitReload } from './config/reloadable.ts';
import type { Config } from './config/schema.ts';
import { formatAddress, parseAddress } from './config/units.ts';
import { Limits } from './limits/index.ts';
import { LineWriter, type LogSink, lineFormat } from './observe/accessLog.ts';
import { Stats } from './observe/stats.ts';
import { Tracer } from './observe/tracing.ts';
import type { ListenerSlot, Runtime } from './pipeline/runtime.ts';
import { createH1Server, H1Server } from './server/h1/engine.ts';
import { H2_COMPAT, serveStreams } from './server/h2/engine.ts';
import {
  attach,
  countConnections,
  createH2c,
  createHttpServer,
  enableH2c,
  requestHandler,
} from './server/http.ts';
import { createTlsFrontend } from './server/tls.ts';
import { MirrorRegistry } from './traffic/mirror.ts';
import type { Target } from './upstream/target.ts';
import type { Upstream } from './upstream/upstream.ts';
import { wafEvents, wafLogLine } from './waf/events.ts';

export interface BoundListener {
  name: string;
  host: string;
  port: number;
  /** `http://127.0.0.1:8080` (for display and tests). */
  url: string;
}

export interface StartOptions {
  /** Where operational messages go (not the access log). Default: stderr. */
  say?: (msg: string) => void;
  /** Override the access log sink (tests pass their own writer, or null for none). */
  accessLog?: LogSink | null;
  /** Bind listeners with SO_REUSEPORT (one process per core). */
  reusePort?: boolean;
}

export class StartError extends Error {}

/** A listening server and how to wind it down (plain HTTP, or TLS with HTTP/2 beside HTTP/1.1). */
interface Frontend {
  server: NetServer;
  closeIdle(): void;
  closeAll(): void;
  stop(): void;
}

export class Gatehouse {
  readonly listeners: BoundListener[] = [];
  readonly #servers: Frontend[] = [];
  /** Each listener's part of the current Plan, updated in place on reload. */
  readonly #slots: ListenerSlot[] = [];
  readonly #rt: Runtime;
  readonly #say: (msg: string) => void;
  #unsubscribe: (() => void) | null = null;
  /** Swapped-out Plans that still have requests running. */
  readonly #retired = new Set<Plan>();
  #closing: Promise<void> | undefined;
  /** The admin listener (API, /metrics, dashboard), when `admin` is configured. */
  admin: AdminServer | null = null;
  #reloads = 0;
  #lastReload: string | null = null;

  private constructor(rt: Runtime, say: (msg: string) => void) {
    this.#rt = rt;
    this.#say = say;
  }

  get plan(): Plan {
    return this.#rt.plan;
  }

  get limits(): Limits {
    return this.#rt.limits;
  }

  get inflight(): number {
    return this.#rt.inflight;
  }

  static async start(config: Config, opts: StartOptions = {}): Promise<Gatehouse> {
    const say = opts.say ?? ((m: string) => process.stderr.write(`[gatehouse] ${m}\n`));
    const stats = config.admin ? new Stats() : null;
    const caches = new CacheRegistry();
    const mirrors = new MirrorRegistry();
    let plan: Plan;
    try {
      plan = compile(config, stats, { caches, mirrors });
    } catch (err) {
      throw new StartError((err as Error).message);
    }
    let log: LogSink | null;
    try {
      log =
        opts.accessLog !== undefined
          ? opts.accessLog
          : config.accessLog.enabled
            ? new LineWriter(config.accessLog.path)
            : null;
    } catch (err) {
      await plan.close();
      throw new StartError(
        `accessLog.path: cannot open ${config.accessLog.path}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
    const rt: Runtime = {
      plan,
      via:
        config.forwarding.via ?? process.env.GATEHOUSE_VIA ?? `gatehouse-${randomBytes(3).toString('hex')}`,
      log,
      line: lineFormat(config.accessLog.format, config.accessLog.fields, config.accessLog.template),
      stats,
      tracer: config.tracing
        ? new Tracer({
            endpoint: config.tracing.endpoint,
            serviceName: config.tracing.serviceName,
            sampleRate: config.tracing.sampleRate,
            headers: config.tracing.headers,
            maxBatch: config.tracing.maxBatch,
            flushInterval: config.tracing.flushInterval,
          })
        : null,
      inflight: 0,
      onIdle: null,
      tunnels: new Set(),
      caches,
      mirrors,
      limits: new Limits(config.limits),
    };
    const gh = new Gatehouse(rt, say);
    // Every WAF block or detection is a process log line (rule, where, the matched part, truncated).
    gh.#unsubscribe = wafEvents.onEvent((e) => say(wafLogLine(e)));
    try {
      for (const l of config.listeners) await gh.#listen(l, config, opts.reusePort ?? false);
      if (config.admin && rt.stats !== null) {
        try {
          gh.admin = await startAdmin(config.admin, {
            stats: rt.stats,
            tracer: rt.tracer,
            plan: () => rt.plan,
            caches,
            mirrors,
            limits: rt.limits,
            reloads: () => ({ count: gh.#reloads, last: gh.#lastReload }),
          });
        } catch (err) {
          throw new StartError(
            `admin: cannot listen on ${config.admin.address}: ${(err as NodeJS.ErrnoException).code}`,
          );
        }
        say(`admin: ${gh.admin.url} (dashboard, /metrics, /api/v1)`);
      }
    } catch (err) {
      await gh.close(0);
      throw err;
    }
    plan.start(gh.#onTarget);
    return gh;
  }

  async #listen(l: Config['listeners'][number], config: Config, reusePort: boolean): Promise<void> {
    const { name, address } = l;
    const { host, port } = parseAddress(address) as { host: string; port: number };
    const slot: ListenerSlot = {
      plan: this.#rt.plan.listeners.get(name) as ListenerSlot['plan'],
      stats: this.#rt.stats?.listener(name) ?? null,
    };
    this.#slots.push(slot);
    let frontend: Frontend;
    if (l.tls) {
      // HTTP/2 stays with node:http2; HTTP/1.1 (by ALPN, or without ALPN) comes to our engine.
      const h1 = l.engine === 'gatehouse' ? new H1Server(this.#rt, slot, config.limits, null) : null;
      let ca: string | undefined;
      try {
        ca = l.tls.clientAuth ? readFileSync(l.tls.clientAuth.caFile, 'utf8') : undefined;
        frontend = createTlsFrontend(l, config.limits, this.#say, ca, h1?.accept);
      } catch (err) {
        throw new StartError(`listener ${name}: cannot load its certificates: ${(err as Error).message}`);
      }
      const tls = frontend.server;
      if (H2_COMPAT) {
        tls.on('request', requestHandler(this.#rt, slot));
      } else {
        // HTTP/2 streams through node:http2's core API; with engine: node, HTTP/1.1 comes as 'request'.
        serveStreams(tls, this.#rt, slot);
        if (h1 === null) tls.on('request', requestHandler(this.#rt, slot));
      }
      attach(tls, this.#rt, slot);
      if (h1 !== null) {
        const tlsFrontend = frontend;
        frontend = {
          server: tls,
          closeIdle() {
            tlsFrontend.closeIdle();
            h1.closeIdle();
          },
          closeAll() {
            tlsFrontend.closeAll();
            h1.closeAll();
          },
          stop: () => tlsFrontend.stop(),
        };
      }
    } else if (l.engine === 'gatehouse') {
      const h2c = l.h2c ? createH2c(this.#rt, slot, config.limits, l) : null;
      const h1 = new H1Server(this.#rt, slot, config.limits, h2c?.server ?? null);
      const server = createH1Server(h1);
      countConnections(server, slot);
      frontend = {
        server,
        closeIdle() {
          h1.closeIdle();
          h2c?.closeIdle();
        },
        closeAll() {
          h1.closeAll();
          h2c?.closeAll();
        },
        stop() {},
      };
    } else {
      const http = createHttpServer(this.#rt, slot, config.limits);
      const h2c = l.h2c ? enableH2c(http, this.#rt, slot, config.limits, l) : null;
      frontend = {
        server: http,
        closeIdle: () => (h2c ? h2c.closeIdle() : http.closeIdleConnections()),
        closeAll: () => (h2c ? h2c.closeAll() : http.closeAllConnections()),
        stop() {},
      };
    }
    const server = frontend.server;
    this.#servers.push(frontend);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const why =
          err.code === 'EADDRINUSE'
            ? 'the address is already in use'
            : err.code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : err.code === 'EADDRNOTAVAIL'
                ? 'no such local address'
                : (err.code ?? err.message);
        reject(new StartError(`listener ${name}: cannot listen on ${address}: ${why}`));
      };
      server.once('error', onError);
      server.listen({ host, port, reusePort, ipv6Only: host === '::' ? false : undefined }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const bound = server.address();
    const actualPort = typeof bound === 'object' && bound !== null ? bound.port : port;
    const url = `${l.tls ? 'https' : 'http'}://${formatAddress(host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, actualPort)}`;
    this.listeners.push({ name, host, port: actualPort, url });
    this.#say(`listener ${name}: ${formatAddress(host, actualPort)} (${url})`);
  }

  readonly #onTarget = (upstream: Upstream, target: Target, change: string) => {
    this.#say(`upstream ${upstream.name}: target ${target.id} ${change}`);
  };

  /**
   * Swaps in a Plan built from `config`. Listeners and limits are bound to sockets and need a
   * restart; routes, middlewares and upstreams change here.
   */
  reload(config: Config): Plan {
    // Restart-only keys (schema metadata) keep their running values, so none is half applied.
    const { config: carried, restartKeys } = splitReload(this.#rt.plan.config, config);
    if (restartKeys.length > 0)
      this.#say(`reload: ${restartKeys.join(', ')} changed; they apply after a restart (kept as they were)`);
    const next = compile(carried, this.#rt.stats, { caches: this.#rt.caches, mirrors: this.#rt.mirrors });
    this.#reloads++;
    this.#lastReload = new Date().toISOString();
    const old = this.#rt.plan;
    this.#rt.plan = next;
    for (const slot of this.#slots) slot.plan = next.listeners.get(slot.plan.name) ?? slot.plan;
    old.stop();
    next.start(this.#onTarget, old);
    // Requests on the old Plan hold references to its routes and pools; it closes when they are done.
    this.#retire(old);
    return next;
  }

  #retire(plan: Plan): void {
    const usage = plan.usage;
    usage.retired = true;
    this.#retired.add(plan);
    const closeIt = () => {
      this.#retired.delete(plan);
      void plan.close();
    };
    if (usage.active === 0) return closeIt();
    usage.onDrained = closeIt;
  }

  /** Reopens the access log file (after log rotation). */
  reopenLog(): void {
    this.#rt.log?.reopen();
  }

  /**
   * Graceful stop: no new connections, idle keep-alive connections closed, running requests given
   * `graceMs` to finish, then every connection closed, the pools and health checks stopped.
   */
  close(graceMs = this.#rt.plan.config.shutdownGracePeriod): Promise<void> {
    this.#closing ??= (async () => {
      const rt = this.#rt;
      this.#unsubscribe?.();
      const closed = this.#servers.map(
        (s) => new Promise<void>((r) => (s.server.listening ? s.server.close(() => r()) : r())),
      );
      for (const s of this.#servers) s.closeIdle();
      if (rt.inflight > 0 && graceMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          const tick = setInterval(() => {
            for (const s of this.#servers) s.closeIdle();
          }, 50);
          const done = () => {
            clearTimeout(timer);
            clearInterval(tick);
            resolve();
          };
          rt.onIdle = done;
          if (rt.inflight === 0) done();
        });
      }
      for (const s of this.#servers) {
        s.closeAll();
        s.stop();
      }
      // Upgraded connections (WebSockets) are no longer the HTTP server's: end them here.
      for (const socket of rt.tunnels ?? []) socket.destroy();
      await Promise.all(closed);
      // Copies to mirrors are nobody's answer: stop them rather than wait for their timeout.
      rt.mirrors.abortAll();
      await rt.plan.close();
      await Promise.all([...this.#retired].map((p) => p.close()));
      await this.admin?.close();
      await rt.tracer?.flush();
      rt.limits.close();
      rt.log?.close();
    })();
    return this.#closing;
  }
}
