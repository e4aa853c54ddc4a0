// Client helpers for tests: undici for ordinary requests, a raw socket where the bytes matter.
import { connect } from 'node:net';
import { request as undiciRequest } from 'undici';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const res = await undiciRequest(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers,
    body: opts.body,
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

export async function json(
  url: string,
  opts: Parameters<typeof send>[1] = {},
): Promise<{ reply: Reply; data: Record<string, unknown> }> {
  const reply = await send(url, opts);
  return { reply, data: JSON.parse(reply.body) };
}

/** Writes `text` on a fresh connection and returns everything the server sends until it closes (or `ms`). */
export function raw(url: string, text: string | Buffer, ms = 3000): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(u.port), u.hostname.replace(/^\[|\]$/g, ''), () => socket.write(text));
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      if (chunks.length) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}
