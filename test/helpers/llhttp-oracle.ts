// Node's own HTTP/1.1 request parser (llhttp, default non-lenient settings) as an oracle for the
// differential tests of our parser. One real `node:http` server on 127.0.0.1; every input is sent as raw
// bytes over its own TCP connection, and what the server made of it is recorded: the requests it
// emitted (method, url, raw headers, body, raw trailers), and whether it refused the bytes
// ('clientError', or an answer of its own such as 400 for a missing Host).
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';

export interface OracleMessage {
  /** 'request', or 'upgrade' / 'connect' when node handed the socket over after the head. */
  kind: 'request' | 'upgrade' | 'connect';
  method: string;
  url: string;
  versionMinor: number;
  versionMajor: number;
  rawHeaders: string[];
  body: Buffer;
  rawTrailers: string[];
}

export interface OracleResult {
  /** Requests node emitted and read to their end, in order. */
  messages: OracleMessage[];
  /**
   * Why node refused, or null: the clientError code (`HPE_*`), `status:NNN` when node answered
   * on its own without emitting a request (e.g. 400 for a missing Host), `aborted` when a request
   * started but never completed, `timeout` when nothing settled.
   */
  error: string | null;
}

interface ServerSide {
  socket: Socket;
  messages: OracleMessage[];
  pending: number;
  error: string | null;
  closed: boolean;
}

export class NodeOracle {
  private readonly server: Server;
  /** Server-side state by server socket; and, until the client side picks it up, by client port. */
  private readonly bySocket = new WeakMap<Socket, ServerSide>();
  private readonly byPort = new Map<number, ServerSide>();
  port = 0;

  constructor() {
    // node:http's defaults, except that CONNECT and Upgrade requests are recorded, not dropped.
    this.server = createServer();
    this.server.on('connection', (socket: Socket) => {
      const side: ServerSide = { socket, messages: [], pending: 0, error: null, closed: false };
      this.bySocket.set(socket, side);
      this.byPort.set(socket.remotePort!, side);
      socket.on('close', () => {
        side.closed = true;
      });
    });
    this.server.on('request', (req: IncomingMessage, res) => {
      const side = this.side(req.socket);
      const msg = message('request', req);
      side.pending++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        msg.body = Buffer.concat(chunks);
        msg.rawTrailers = req.rawTrailers.slice();
        side.messages.push(msg);
        side.pending--;
        res.end('ok');
      });
      req.on('error', () => {});
    });
    // Expectations other than 100-continue: record the request instead of the default 417.
    this.server.on('checkExpectation', (req: IncomingMessage, res) => this.server.emit('request', req, res));
    for (const kind of ['upgrade', 'connect'] as const) {
      // (with a body, node hands over a stream in front of the socket: req.socket is the socket)
      this.server.on(kind, (req: IncomingMessage, socket: Socket) => {
        const side = this.side(req.socket);
        side.messages.push(message(kind, req));
        socket.destroy();
        req.socket.destroy();
      });
    }
    this.server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
      const side = this.side(socket);
      side.error ??= err.code ?? err.message;
      socket.destroy();
    });
  }

  private side(socket: Socket): ServerSide {
    return this.bySocket.get(socket)!;
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Sends `bytes` on a fresh connection, half-closes once node has read them all, and reports. */
  async run(bytes: Buffer, timeoutMs = 3000): Promise<OracleResult> {
    // Many short connections can run out of local ports for a moment (TIME_WAIT): wait and retry.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce(bytes, timeoutMs);
      } catch (err) {
        if (attempt === 20) throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  private async runOnce(bytes: Buffer, timeoutMs: number): Promise<OracleResult> {
    const client = connect(this.port, '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    const localPort = client.localPort!;
    const response: Buffer[] = [];
    client.on('data', (c: Buffer) => response.push(c));
    const closed = once(client, 'close');
    const deadline = Date.now() + timeoutMs;
    let side = this.byPort.get(localPort);
    while (!side && Date.now() < deadline) {
      await tick();
      side = this.byPort.get(localPort);
    }
    this.byPort.delete(localPort);
    client.write(bytes);
    // Wait until node has read every byte (or closed the connection), then let its stream events run.
    while (side && !side.closed && side.socket.bytesRead < bytes.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
    }
    for (let i = 0; i < 5; i++) await tick();
    // A request still open here is waiting for body bytes that will not come; give its events a
    // moment, then end the connection (node reports the cut-short request as a clientError).
    const settle = Math.min(deadline, Date.now() + 500);
    while (side && side.pending > 0 && !side.closed && Date.now() < settle) {
      await new Promise((r) => setTimeout(r, 1));
    }
    client.end();
    const timer = setTimeout(() => client.destroy(), Math.max(1, deadline - Date.now()));
    await closed;
    clearTimeout(timer);
    for (let i = 0; i < 3; i++) await tick();
    if (!side) return { messages: [], error: 'timeout' };
    let error = side.error;
    if (error === null && side.pending > 0) error = 'aborted';
    if (error === null) {
      // node answers some requests itself (400 without Host, for one) without emitting them.
      const answered = Buffer.concat(response).toString('latin1');
      const statuses = [...answered.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
      const own = statuses.find((s) => s !== '200' && s[0] !== '1');
      if (own) error = `status:${own}`;
    }
    return { messages: side.messages, error };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function message(kind: OracleMessage['kind'], req: IncomingMessage): OracleMessage {
  return {
    kind,
    method: req.method!,
    url: req.url!,
    versionMajor: req.httpVersionMajor,
    versionMinor: req.httpVersionMinor,
    rawHeaders: req.rawHeaders.slice(),
    body: Buffer.alloc(0),
    rawTrailers: [],
  };
}
