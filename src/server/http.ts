// HTTP listeners: the socket-level part of the `accept` stage. Node's llhttp parser is strict by
// default (no request smuggling through conflicting Content-Length / Transfer-Encoding); the
// header timeout answers slow clients with 408 and an oversized head gets 431.
import type { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  createServer as createH2Server,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import type { LimitsConfig } from '../config/schema.ts';
import { gateConnections, gatedListeners, gateFor } from '../limits/index.ts';
import type { Reason } from '../pipeline/errors.ts';
import { NodeResponder, SocketResponder } from '../pipeline/responder.ts';
import { handleRequest } from '../pipeline/run.ts';
import type { ListenerSlot, Runtime } from '../pipeline/runtime.ts';
import { isWebSocketUpgrade } from '../upstream/tunnel.ts';
import { H2_COMPAT, serveStreams } from './h2/engine.ts';
import { answerMalformed } from './malformed.ts';
import { sniffPreface } from './preface.ts';

export function createHttpServer(rt: Runtime, slot: ListenerSlot, limits: LimitsConfig): Server {
  const server = createServer(
    {
      // Request line and headers share Node's one limit; the accept stage then checks each against its own.
      maxHeaderSize: limits.maxRequestHeaders + limits.maxUriLength,
      headersTimeout: limits.headerTimeout,
      // The whole-request timeout is off: a large upload is fine while it moves (limits.bodyTimeout).
      requestTimeout: 0,
      keepAliveTimeout: limits.keepAliveTimeout,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headerTimeout / 4))),
      // A missing Host is refused by the accept stage (one error writer, one log line), not by Node.
      requireHostHeader: false,
      noDelay: true,
    },
    requestHandler(rt, slot),
  );
  attach(server, rt, slot);
  return server;
}

/**
 * A listener's handler for node:http's 'request' event, into the one request path: HTTP/1.1 with
 * `engine: node`, and HTTP/2 through the compatibility layer only under GATEHOUSE_H2_COMPAT=1
 * (otherwise HTTP/2 streams go through server/h2, serveStreams).
 */
export function requestHandler(rt: Runtime, slot: ListenerSlot) {
  return (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    const h2 = req.httpVersionMajor === 2;
    // node:http drops whatever follows a request whose Upgrade it declined: such a connection is
    // closed after its answer rather than left waiting for a request it swallowed.
    if (!h2 && req.headers.upgrade !== undefined) (res as ServerResponse).shouldKeepAlive = false;
    handleRequest(rt, slot, req as IncomingMessage, new NodeResponder(res, h2), null);
  };
}

/**
 * What every listener's server gets: upgrade requests (WebSockets) into the same request path with
 * a raw-socket responder, malformed-request answers, and connection counts.
 */
export function attach(server: EventEmitter, rt: Runtime, slot: ListenerSlot): void {
  countConnections(server, slot);
  // The listener's connection gate (limits/gate.ts) in front of every connection listener so far:
  // node:http's or TLS's, and the count above, so that a refused connection reaches none of them.
  const gate = gateFor(rt, slot);
  gateConnections(server as NetServer, gate);
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') gate.handshakeTimeouts++;
  });
  // WebSocket upgrades go through the request path; any other Upgrade is served as plain HTTP/1.1.
  (server as unknown as { shouldUpgradeCallback: (req: IncomingMessage) => boolean }).shouldUpgradeCallback =
    isWebSocketUpgrade;
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    handleRequest(rt, slot, req, new SocketResponder(socket), head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) =>
    clientError(rt, slot, err, socket),
  );
}

/** Connections (and TLS handshakes) of a listener, for /metrics and the dashboard. */
export function countConnections(server: EventEmitter, slot: ListenerSlot): void {
  const ls = slot.stats;
  if (ls === null) return;
  server.on('connection', (socket: Socket) => {
    ls.connections++;
    socket.once('close', () => ls.connections--);
  });
  server.on('secureConnection', () => ls.tlsHandshakes++);
  server.on('tlsClientError', () => ls.tlsErrors++);
}

const CLIENT_ERRORS: Record<string, Reason> = {
  HPE_HEADER_OVERFLOW: 'headers_too_large',
  ERR_HTTP_REQUEST_TIMEOUT: 'request_timeout',
  HPE_HEADER_TIMEOUT: 'request_timeout',
};

/** A request Node's parser refused: answered and logged like any malformed request. */
function clientError(rt: Runtime, slot: ListenerSlot, err: NodeJS.ErrnoException, socket: Socket): void {
  const code = err.code ?? '';
  if (code === 'ECONNRESET' || !socket.writable || (err as { bytesParsed?: number }).bytesParsed === 0) {
    socket.destroy();
    return;
  }
  answerMalformed(rt, slot, socket, CLIENT_ERRORS[code] ?? 'bad_request');
}

export interface Http2Limits {
  maxConcurrentStreams: number;
  resetBurst: number;
  resetRate: number;
}

/** HTTP/2 server options from a listener's limits: streams, header list size, rapid-reset rate. */
export function http2Options(limits: LimitsConfig, h2: Http2Limits) {
  return {
    settings: {
      maxConcurrentStreams: h2.maxConcurrentStreams,
      maxHeaderListSize: limits.maxRequestHeaders + limits.maxUriLength,
    },
    streamResetBurst: h2.resetBurst,
    streamResetRate: h2.resetRate,
  };
}

/** The open HTTP/2 sessions of a server; an idle one is closed like an idle HTTP/1.1 connection. */
export function trackSessions(server: EventEmitter, keepAliveMs: number): Set<Http2Session> {
  const sessions = new Set<Http2Session>();
  server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
    s.setTimeout(keepAliveMs, () => s.close());
  });
  return sessions;
}

/**
 * Cleartext HTTP/2 (h2c) with prior knowledge beside HTTP/1.1 on one listener: the first bytes of
 * each connection are looked at; the HTTP/2 connection preface goes to an HTTP/2 session, anything
 * else to Node's HTTP/1.1 handling, with the bytes put back. (The HTTP/1.1 `Upgrade: h2c` dance is
 * not offered: clients that know h2c use prior knowledge.)
 */
export function enableH2c(
  server: Server,
  rt: Runtime,
  slot: ListenerSlot,
  limits: LimitsConfig,
  l: { http2Limits: Http2Limits },
): { closeIdle(): void; closeAll(): void } {
  const h2c = createH2c(rt, slot, limits, l);
  // node:http's connection listener is the first one: behind the listener's gate when it has one
  // (attach), so the sniffing takes its place there and refused connections are never sniffed.
  const gated = gatedListeners(server);
  const listeners = gated ?? (server.listeners('connection') as ((socket: Socket) => void)[]);
  const http1 = listeners[0];
  const sniff = (socket: Socket) =>
    sniffPreface(
      socket,
      limits.headerTimeout,
      (s) => h2c.server.emit('connection', s),
      (s) => http1.call(server, s),
    );
  if (gated !== null) gated[0] = sniff;
  else {
    server.removeListener('connection', http1);
    server.prependListener('connection', sniff);
  }
  return {
    closeIdle() {
      server.closeIdleConnections();
      h2c.closeIdle();
    },
    closeAll() {
      server.closeAllConnections();
      h2c.closeAll();
    },
  };
}

/** The HTTP/2 server behind an h2c listener (either engine hands it the connections that start with the preface). */
export function createH2c(
  rt: Runtime,
  slot: ListenerSlot,
  limits: LimitsConfig,
  l: { http2Limits: Http2Limits },
): { server: Http2Server; closeIdle(): void; closeAll(): void } {
  const h2 = createH2Server(http2Options(limits, l.http2Limits) as Parameters<typeof createH2Server>[0]);
  if (H2_COMPAT) h2.on('request', requestHandler(rt, slot));
  else serveStreams(h2, rt, slot);
  const sessions = trackSessions(h2, limits.keepAliveTimeout);
  return {
    server: h2,
    closeIdle() {
      for (const s of sessions) s.close();
    },
    closeAll() {
      for (const s of sessions) s.destroy();
    },
  };
}
