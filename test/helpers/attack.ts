// Helpers for test/e2e/attack.test.ts: one client for every transport (HTTP/1.1 plain and TLS,
// HTTP/2 over TLS and h2c, WebSocket upgrades plain and TLS) that sends what an attacker would,
// byte for byte where it matters; an origin that reads a connection the way most servers other
// than Node's do (requests one after another, an unhandled Upgrade ignored); self-signed client
// certificates with any subject.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as connectH2 } from 'node:http2';
import { type AddressInfo, connect as connectTcp, createServer, type Server, Socket } from 'node:net';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';

export type Transport = 'h1' | 'h1s' | 'h2' | 'h2c' | 'ws' | 'wss';
export const ALL: readonly Transport[] = ['h1', 'h1s', 'h2', 'h2c', 'ws', 'wss'];
export const H1: readonly Transport[] = ['h1', 'h1s', 'ws', 'wss'];

export interface Listeners {
  /** HTTP/1.1 without TLS. */
  plain: string;
  /** HTTP/1.1 and h2c (prior knowledge) without TLS. */
  h2c: string;
  /** TLS: HTTP/2 and HTTP/1.1 by ALPN. */
  tls: string;
  ca: string;
  servername: string;
}

export interface Ask {
  method?: string;
  target: string;
  /** The Host header (HTTP/1.1) or :authority (HTTP/2); null leaves it out. */
  host?: string | null;
  /** Extra fields, in order; HTTP/2 names must be lower case. */
  headers?: [string, string][];
  /** HTTP/1.1 only: the Connection header's value (an upgrade adds `Upgrade` to it). */
  connection?: string;
  body?: string;
  /** Bytes written after the request (HTTP/1.1 and upgrades): a pipelined request, early frames. */
  after?: string;
  /** A client certificate for TLS transports. */
  cert?: { cert: string; key: string };
  ms?: number;
}

export interface Answer {
  /** 0 when there was no HTTP answer (a stream reset, the connection closed, a client-side refusal). */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** HTTP/1.1: everything read from the connection; HTTP/2: a note on how the stream ended. */
  raw: string;
  /** Milliseconds until the connection closed or the stream ended. */
  ms: number;
}

export const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** The head of the first HTTP/1.1 response in `raw`. */
export function parseH1(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(raw);
  if (m === null) return { status: 0, headers: {}, body: '' };
  const end = raw.indexOf('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of raw.slice(m[0].length, end < 0 ? raw.length : end).split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers, body: end < 0 ? '' : raw.slice(end + 4) };
}

/** Writes `text` on a new connection (TLS with ALPN http/1.1 when `tls`), reads until close or `ms`. */
export function rawH1(
  url: string,
  text: string,
  opts: { tls?: { ca: string; servername: string }; cert?: { cert: string; key: string }; ms?: number } = {},
): Promise<{ raw: string; ms: number; closed: boolean }> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ raw: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - t0, closed });
    };
    const write = () => socket.write(Buffer.from(text, 'latin1'));
    const socket: Socket = opts.tls
      ? connectTls(
          {
            host,
            port,
            ca: opts.tls.ca,
            servername: opts.tls.servername,
            ALPNProtocols: ['http/1.1'],
            ...(opts.cert ?? {}),
          },
          write,
        )
      : connectTcp(port, host, write);
    const timer = setTimeout(() => finish(false), opts.ms ?? 3000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

/** One request on the given transport. */
export async function ask(l: Listeners, transport: Transport, a: Ask): Promise<Answer> {
  if (transport === 'h2' || transport === 'h2c') return askH2(l, transport, a);
  const ws = transport === 'ws' || transport === 'wss';
  const tls = transport === 'h1s' || transport === 'wss';
  const method = a.method ?? 'GET';
  let text = `${method} ${a.target} HTTP/1.1\r\n`;
  if (a.host !== null) text += `Host: ${a.host ?? 'x'}\r\n`;
  for (const [n, v] of a.headers ?? []) text += `${n}: ${v}\r\n`;
  if (ws) {
    text += `Connection: Upgrade${a.connection ? `, ${a.connection}` : ''}\r\nUpgrade: websocket\r\n`;
    text += `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${WS_KEY}\r\n`;
  } else text += `Connection: ${a.connection ? `close, ${a.connection}` : 'close'}\r\n`;
  if (a.body !== undefined) text += `Content-Length: ${Buffer.byteLength(a.body, 'latin1')}\r\n`;
  text += `\r\n${a.body ?? ''}${a.after ?? ''}`;
  const r = await rawH1(tls ? l.tls : l.plain, text, {
    tls: tls ? { ca: l.ca, servername: l.servername } : undefined,
    cert: a.cert,
    ms: a.ms,
  });
  return { ...parseH1(r.raw), raw: r.raw, ms: r.ms };
}

function askH2(l: Listeners, transport: 'h2' | 'h2c', a: Ask): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const url = transport === 'h2' ? l.tls : l.h2c;
    const session = connectH2(
      url,
      transport === 'h2' ? { ca: l.ca, servername: l.servername, ...(a.cert ?? {}) } : {},
    );
    let done = false;
    const finish = (status: number, headers: Record<string, string>, body: string, raw: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      resolve({ status, headers, body, raw, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish(0, {}, '', 'timeout'), a.ms ?? 3000);
    session.on('error', (e) => finish(0, {}, '', `session error: ${e.message}`));
    const fields: Record<string, string | string[]> = { ':method': a.method ?? 'GET' };
    if (a.target !== '') fields[':path'] = a.target;
    if (a.host !== null) fields[':authority'] = a.host ?? 'x';
    for (const [n, v] of a.headers ?? []) {
      const prev = fields[n];
      fields[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    let stream: ReturnType<typeof session.request>;
    try {
      stream = session.request(fields, { endStream: a.body === undefined });
    } catch (e) {
      return finish(0, {}, '', `client refused: ${(e as Error).message}`);
    }
    let status = 0;
    const headers: Record<string, string> = {};
    let body = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) headers[k] = String(v);
    });
    stream.setEncoding('latin1');
    stream.on('data', (c: string) => {
      body += c;
    });
    stream.on('error', (e) => finish(status, headers, body, `stream error: ${e.message}`));
    stream.on('close', () => finish(status, headers, body, `closed rst=${stream.rstCode}`));
    if (a.body !== undefined) stream.end(a.body);
  });
}

/** What a recording origin saw of one request. */
export interface Seen {
  line: string;
  method: string;
  target: string;
  /** Names lower case; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

export interface KeepAliveOrigin {
  url: string;
  /** Every request read, on every connection, in order. */
  seen: Seen[];
  /** Each connection's bytes as received, and how many of them had arrived when the first answer was written. */
  connections: { bytes: string; beforeFirstAnswer: number }[];
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 origin that reads requests one after another on a kept-alive connection and ignores
 * Upgrade (as Go's net/http, most Python and Ruby servers, nginx or Apache do when the path is not
 * a WebSocket endpoint): each request gets `200 ok` with a Content-Length.
 */
export async function keepAliveOrigin(): Promise<KeepAliveOrigin> {
  const seen: Seen[] = [];
  const connections: KeepAliveOrigin['connections'] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const conn = { bytes: '', beforeFirstAnswer: -1 };
    connections.push(conn);
    let buf = '';
    socket.on('data', (c: Buffer) => {
      conn.bytes += c.toString('latin1');
      buf += c.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.slice(0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          if (i <= 0) continue;
          const n = line.slice(0, i).trim().toLowerCase();
          const v = line.slice(i + 1).trim();
          headers[n] = headers[n] === undefined ? v : `${headers[n]}, ${v}`;
        }
        let body: string;
        let rest: string;
        if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
          const d = dechunk(buf.slice(end + 4));
          if (d === undefined) return;
          [body, rest] = d;
        } else {
          const len = Number(headers['content-length'] ?? 0) || 0;
          if (buf.length < end + 4 + len) return;
          body = buf.slice(end + 4, end + 4 + len);
          rest = buf.slice(end + 4 + len);
        }
        buf = rest;
        const [method = '', target = ''] = lines[0].split(' ');
        seen.push({ line: lines[0], method, target, headers, body });
        if (conn.beforeFirstAnswer < 0) conn.beforeFirstAnswer = conn.bytes.length - buf.length;
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    connections,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A chunked body at the start of `s`: [body, what follows], or undefined while incomplete. */
function dechunk(s: string): [string, string] | undefined {
  let body = '';
  let i = 0;
  for (;;) {
    const eol = s.indexOf('\r\n', i);
    if (eol < 0) return undefined;
    const size = Number.parseInt(s.slice(i, eol).split(';')[0], 16);
    if (!Number.isFinite(size)) return [body, s.slice(i)];
    i = eol + 2;
    if (size === 0) {
      const end = s.indexOf('\r\n\r\n', i - 2);
      if (end < 0) return undefined;
      return [body, s.slice(end + 4)];
    }
    if (s.length < i + size + 2) return undefined;
    body += s.slice(i, i + size);
    i += size + 2;
  }
}

/**
 * A self-signed client certificate (clientAuth) whose subject is exactly `subj` in openssl's
 * `-subj` syntax (`/CN=...`, with `\/` for a slash); control characters pass through as given.
 */
export function selfSigned(dir: string, file: string, subj: string): { cert: string; key: string } {
  const keyFile = join(dir, `${file}.key`);
  const certFile = join(dir, `${file}.pem`);
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], {
    stdio: 'pipe',
  });
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-new',
      '-key',
      keyFile,
      '-days',
      '2',
      '-subj',
      subj,
      '-addext',
      'extendedKeyUsage=clientAuth',
      '-out',
      certFile,
    ],
    { stdio: 'pipe' },
  );
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/** This process's sockets accepted on `port` (server side): connections a listener still holds. */
export function serverSockets(port: number): Socket[] {
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  return handles.filter((h): h is Socket => h instanceof Socket && h.localPort === port && !h.destroyed);
}

/** Test cleanup: destroys what a listener failed to close itself, so the test can stop Gatehouse. */
export function dropServerSockets(port: number): number {
  const held = serverSockets(port);
  for (const s of held) s.destroy();
  return held.length;
}
