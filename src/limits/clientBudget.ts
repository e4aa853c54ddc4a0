// limits.upstreamConnectionsPerClient: requests (and WebSocket tunnels) one client address may have
// in flight to one upstream at once. Without it a few hundred slow clients, each holding one
// request open, take every connection of an upstream's pools and everyone else waits. Counted by
// upstream name (a reload keeps the counts of requests still running) and client address; an entry
// lives only while the address has something in flight, so memory follows the requests.

export class ClientUpstreamBudget {
  readonly max: number;
  readonly #inflight = new Map<string, Map<string, number>>();
  /** Refusals by upstream name. */
  readonly refused = new Map<string, number>();

  constructor(max: number) {
    this.max = max;
  }

  /** Takes one slot for `ip` on `upstream`; false (and counted) when it has `max` already. */
  acquire(upstream: string, ip: string): boolean {
    let byIp = this.#inflight.get(upstream);
    if (byIp === undefined) {
      byIp = new Map();
      this.#inflight.set(upstream, byIp);
    }
    const n = byIp.get(ip) ?? 0;
    if (n >= this.max) {
      this.refused.set(upstream, (this.refused.get(upstream) ?? 0) + 1);
      return false;
    }
    byIp.set(ip, n + 1);
    return true;
  }

  release(upstream: string, ip: string): void {
    const byIp = this.#inflight.get(upstream);
    if (byIp === undefined) return;
    const n = (byIp.get(ip) ?? 1) - 1;
    if (n > 0) byIp.set(ip, n);
    else byIp.delete(ip);
  }

  /** In flight now for `ip` on `upstream`. */
  inflight(upstream: string, ip: string): number {
    return this.#inflight.get(upstream)?.get(ip) ?? 0;
  }

  /** Client addresses with something in flight, per upstream (for /metrics). */
  clients(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [u, byIp] of this.#inflight) out.set(u, byIp.size);
    return out;
  }
}
