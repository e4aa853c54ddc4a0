// The connection gate of one listener: where a TCP connection is accepted, before any byte of it is
// read or any TLS, HTTP/1.1 or HTTP/2 state is made for it.
//
// - limits.maxConnections is the listening socket's own cap (net.Server#maxConnections): Node
//   closes a connection over it as it is accepted, before a Socket object exists, and reports it
//   with 'drop', which is counted here.
// - A banned address (the TCP peer; one behind a trusted proxy is refused in the request stage) and
//   an address over limits.maxConnectionsPerClient are reset at once (RST: nothing of it stays in
//   TIME_WAIT here) and counted. Trusted proxies of the listener are exempt from both: every client
//   behind them shares their address.
//
// The gate is the only 'connection' listener of the accepting server; the listeners the server had
// (node:http's, TLS's, the connection count) run behind it, only for admitted sockets.
import type { Server, Socket } from 'node:net';
import { inList } from '../middleware/ipFilter.ts';
import { normalizeIp } from '../pipeline/forwarding.ts';
import type { ListenerSlot } from '../pipeline/runtime.ts';
import type { BanList } from './ban.ts';

type ConnectionListener = (socket: Socket) => void;

const kInner = Symbol('gatehouse.gate.inner');

interface GatedListener extends ConnectionListener {
  [kInner]: ConnectionListener[];
}

export class ConnectionGate {
  readonly listener: string;
  readonly maxConnections: number;
  readonly maxPerClient: number;
  readonly #slot: ListenerSlot;
  readonly #bans: BanList | null;
  /** Open connections per peer address (only with maxConnectionsPerClient). */
  readonly #perClient = new Map<string, number>();
  /** Refused: over maxConnections, over maxConnectionsPerClient, banned. */
  refusedMax = 0;
  refusedPerClient = 0;
  refusedBanned = 0;
  /** TLS handshakes that did not finish within limits.tlsHandshakeTimeout. */
  handshakeTimeouts = 0;

  constructor(
    listener: string,
    slot: ListenerSlot,
    limits: { maxConnections: number; maxConnectionsPerClient: number },
    bans: BanList | null,
  ) {
    this.listener = listener;
    this.#slot = slot;
    this.maxConnections = limits.maxConnections;
    this.maxPerClient = limits.maxConnectionsPerClient;
    this.#bans = bans;
  }

  /** Whether admit() has anything to check (otherwise the server keeps its listeners as they are). */
  get inspects(): boolean {
    return this.maxPerClient > 0 || this.#bans !== null;
  }

  /** Open connections of one address on this listener (tests, the admin API). */
  openFrom(ip: string): number {
    return this.#perClient.get(ip) ?? 0;
  }

  /** Addresses with open connections (bounded by the open connections). */
  get clients(): number {
    return this.#perClient.size;
  }

  /** Counts `socket` in, or refuses it (reset and counted): false. */
  admit(socket: Socket): boolean {
    const ip = normalizeIp(socket.remoteAddress);
    if (ip === '') {
      // Gone before it was accepted.
      socket.destroy();
      return false;
    }
    const bans = this.#bans;
    if (bans?.isBanned(ip) && !this.#trusted(ip)) {
      this.refusedBanned++;
      refuse(socket);
      return false;
    }
    const max = this.maxPerClient;
    if (max === 0) return true;
    const n = this.#perClient.get(ip) ?? 0;
    if (n >= max && !this.#trusted(ip)) {
      this.refusedPerClient++;
      refuse(socket);
      bans?.offence(ip, 'max_connections_per_client');
      return false;
    }
    this.#perClient.set(ip, n + 1);
    socket.once('close', () => this.#release(ip));
    return true;
  }

  /** Node dropped a connection over server.maxConnections. */
  readonly onDrop = (): void => {
    this.refusedMax++;
  };

  #release(ip: string): void {
    const n = (this.#perClient.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perClient.delete(ip);
    else this.#perClient.set(ip, n);
  }

  #trusted(ip: string): boolean {
    const list = this.#slot.plan.trusted;
    if (list === null) return false;
    try {
      return inList(list, ip);
    } catch {
      return false;
    }
  }
}

function refuse(socket: Socket): void {
  // RST rather than FIN: the refused connection leaves nothing behind (no TIME_WAIT on our side).
  if (typeof socket.resetAndDestroy === 'function' && !socket.destroyed) socket.resetAndDestroy();
  else socket.destroy();
}

/**
 * Puts `gate` in front of `server`'s connections: the listening socket's cap, and when the gate
 * inspects addresses, one 'connection' listener that runs the server's current ones for admitted
 * sockets only. Call it once the server's own connection listeners are in place.
 */
export function gateConnections(server: Server, gate: ConnectionGate): void {
  if (gate.maxConnections > 0) {
    server.maxConnections = gate.maxConnections;
    server.on('drop', gate.onDrop);
  }
  if (!gate.inspects) return;
  const inner = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  const gated = function (this: Server, socket: Socket): void {
    if (!gate.admit(socket)) return;
    for (let i = 0; i < inner.length; i++) inner[i].call(this, socket);
  } as GatedListener;
  gated[kInner] = inner;
  server.on('connection', gated);
}

/**
 * The connection listeners a gate runs for `server` (the array itself, to be changed in place), or
 * null when it has no gate in front: for enableH2c, which puts its preface sniffing behind the gate.
 */
export function gatedListeners(server: Server): ConnectionListener[] | null {
  for (const l of server.listeners('connection')) {
    const inner = (l as Partial<GatedListener>)[kInner];
    if (inner !== undefined) return inner;
  }
  return null;
}
