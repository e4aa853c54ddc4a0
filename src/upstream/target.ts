// A target is one backend address of an upstream, with its own keep-alive pool and live counters.
import { Pool } from 'undici';

export interface TargetOptions {
  weight: number;
  maxConnections: number;
  connectTimeout: number;
  headersTimeout: number;
  bodyTimeout: number;
  keepAliveTimeout: number;
}

export class Target {
  /** `http://127.0.0.1:4000`: also the key for hashing balancers, so a target keeps its slot across reloads. */
  readonly id: string;
  readonly url: URL;
  /** host:port, sent as Host when the upstream does not pass the client's. */
  readonly authority: string;
  readonly weight: number;
  readonly pool: Pool;
  /** Requests in flight to this target. */
  active = 0;
  /** False while the active health check says it is down. */
  healthy = true;
  /** Smooth weighted round robin state (roundRobin balancer). */
  current = 0;

  constructor(url: string, opts: TargetOptions) {
    this.url = new URL(url);
    this.id = this.url.origin;
    this.authority = this.url.host;
    this.weight = opts.weight;
    this.pool = new Pool(this.url.origin, {
      connections: opts.maxConnections,
      pipelining: 1,
      connect: { timeout: opts.connectTimeout },
      headersTimeout: opts.headersTimeout,
      bodyTimeout: opts.bodyTimeout,
      keepAliveTimeout: opts.keepAliveTimeout,
      keepAliveMaxTimeout: Math.max(opts.keepAliveTimeout, 1000),
      // Responses are streamed, never buffered, so undici's own header cap is the only size limit here.
      maxHeaderSize: 64 * 1024,
    });
  }

  get available(): boolean {
    return this.healthy;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
