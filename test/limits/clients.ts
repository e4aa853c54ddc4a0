// Clients for the abuse-limit tests, each from a loopback address of its choosing (127.0.0.N), so
// that Gatehouse sees attackers and ordinary clients as different client addresses: raw TCP
// connections that say nothing, HTTP/1.1 requests written by hand (plain or TLS), HTTP/2 (TLS or h2c).

import { type ClientHttp2Session, connect as connectH2 } from 'node:http2';
import { connect as connectTcp, type Socket } from 'node:net';
import { type ConnectionOptions, connect as connectTls } from 'node:tls';
import { parseH1 } from '../helpers/attack.ts';

export interface TlsOpts {
  ca: string;
  servername: string;
}

export function portOf(url: string): number {
  return Number(new URL(url).port);
}

const opened = new WeakMap<Socket, { at: number; closed: number }>();

/** How long a held connection stayed open (ms), or -1 while it is. */
export function lifetime(s: Socket): number {
  const t = opened.get(s);
  return t === undefined || t.closed < 0 ? -1 : t.closed - t.at;
}

/** A TCP connection from `from` that sends nothing; resolves once connected. */
export function hold(url: string, from: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connectTcp({ host: '127.0.0.1', port: portOf(url), localAddress: from });
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      const t = { at: performance.now(), closed: -1 };
      opened.set(s, t);
      s.once('close', () => {
        t.closed = performance.now();
      });
      s.resume(); // so that a close by the other side is seen ('end', then 'close')
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** `n` silent connections from `from`, opened a batch at a time. */
export async function holdMany(url: string, from: string, n: number, batch = 200): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i += batch)
    out.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => hold(url, from)))));
  return out;
}

export function isOpen(s: Socket): boolean {
  return !s.destroyed && !s.readableEnded;
}

export interface H1Answer {
  /** 0: the connection closed (or was refused) without an answer. */
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
  /** The connection was closed by the other side (or reset). */
  closed: boolean;
  ms: number;
}

/** The head of the first HTTP/1.1 response in `raw` (the attack tests' parser). */
export const parseHead = parseH1;

/**
 * Writes `text` on a new connection from `from` (TLS with ALPN http/1.1 when `tls`), then reads
 * until the connection closes, a whole answer with Content-Length has arrived, or `ms`.
 */
export function h1(
  url: string,
  from: string,
  text: string,
  opts: { tls?: TlsOpts; ms?: number; untilClose?: boolean } = {},
): Promise<H1Answer> {
  const port = portOf(url);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks).toString('latin1');
      resolve({ ...parseHead(raw), raw, closed, ms: performance.now() - t0 });
    };
    const write = () => socket.write(Buffer.from(text, 'latin1'));
    const socket: Socket = opts.tls
      ? connectTls(
          {
            host: '127.0.0.1',
            port,
            localAddress: from,
            ca: opts.tls.ca,
            servername: opts.tls.servername,
            ALPNProtocols: ['http/1.1'],
          } as ConnectionOptions,
          write,
        )
      : connectTcp({ host: '127.0.0.1', port, localAddress: from }, write);
    const timer = setTimeout(() => finish(false), opts.ms ?? 3000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (opts.untilClose) return;
      const raw = Buffer.concat(chunks).toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, end))?.[1] ?? -1);
      if (len >= 0 && raw.length >= end + 4 + len) finish(false);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

/** A GET with Connection: close from `from`. */
export function get(url: string, from: string, path = '/', opts: { tls?: TlsOpts; ms?: number } = {}) {
  return h1(url, from, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, opts);
}

export interface H2Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** How the stream ended: 'ended', 'rst=<code>', 'session error: ...', 'timeout'. */
  end: string;
}

/** An HTTP/2 session from `from`: over TLS (ALPN h2) or h2c with prior knowledge. */
export function h2session(url: string, from: string, tls?: TlsOpts): ClientHttp2Session {
  const s = connectH2(
    url,
    // localAddress reaches net/tls.connect (the types of http2.connect leave it out).
    (tls ? { ca: tls.ca, servername: tls.servername, localAddress: from } : { localAddress: from }) as object,
  );
  s.on('error', () => {});
  return s;
}

/** One request on an HTTP/2 session; `body` chunks are written `every` ms apart (then the end). */
export function h2request(
  session: ClientHttp2Session,
  req: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer[]; every?: number },
  ms = 5000,
): Promise<H2Answer> {
  return new Promise((resolve) => {
    const stream = session.request(
      { ':method': req.method ?? 'GET', ':path': req.path, ':authority': 'x', ...(req.headers ?? {}) },
      { endStream: req.body === undefined },
    );
    let status = 0;
    const headers: Record<string, string> = {};
    let body = '';
    let done = false;
    let writer: NodeJS.Timeout | undefined;
    const finish = (end: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(writer);
      resolve({ status, headers, body, end });
    };
    const timer = setTimeout(() => {
      stream.close();
      finish('timeout');
    }, ms);
    stream.on('response', (h) => {
      status = Number(h[':status']);
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) headers[k] = String(v);
    });
    stream.setEncoding('latin1');
    stream.on('data', (c: string) => {
      body += c;
    });
    stream.on('error', (e) => finish(`stream error: ${e.message}`));
    stream.on('close', () => finish(stream.rstCode ? `rst=${stream.rstCode}` : 'ended'));
    const chunks = req.body;
    if (chunks !== undefined) {
      if (req.every === undefined) {
        for (const c of chunks) stream.write(c);
        stream.end();
      } else {
        let i = 0;
        writer = setInterval(() => {
          if (stream.destroyed || stream.closed) return clearInterval(writer);
          if (i < chunks.length) stream.write(chunks[i++]);
          else {
            clearInterval(writer);
            stream.end();
          }
        }, req.every);
      }
    }
  });
}

/** Percentile of `xs` (0–100), nearest rank. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
