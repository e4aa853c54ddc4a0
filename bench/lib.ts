// What the benchmark scripts share: child processes they start (and stop, by PID, on exit), waiting
// for a port to answer, nginx's boilerplate for a config that runs in the foreground from a temp dir,
// a realistic JSON body for the compression rows, and one raw request that counts the bytes received.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');
export const PROXY_CORE = '0';
export const LOAD_CORE = '1';
export const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const children: ChildProcess[] = [];
let stopping = false;

/** Starts a child whose stderr is kept (and printed if it dies on its own); stdout is passed to onOut. */
export function run(cmd: string, args: string[], log: string, onOut?: (text: string) => void): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', onOut ? 'pipe' : 'ignore', 'pipe'], cwd: ROOT });
  let err = '';
  child.stderr?.on('data', (c) => {
    err += c;
    onOut?.(String(c));
  });
  child.stdout?.on('data', (c) => onOut?.(String(c)));
  child.on('exit', (code) => {
    if (code && code !== 0 && !stopping && child.signalCode === null)
      process.stderr.write(`${log} exited ${code}: ${err}\n`);
  });
  children.push(child);
  return child;
}

/** Stops every child this script started that is still running. */
export function stopAll(): void {
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
}
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));

export async function waitFor(port: number, path = '/100b'): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}${path}`);
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing answers 200 on port ${port}`);
}

export const nginxCommon = (name: string) => `daemon off; master_process off; worker_processes 1; user root;
pid ${dir}/${name}.pid; error_log ${dir}/${name}.error.log warn;
events { worker_connections 8192; }`;

export const nginxTemps = (name: string) =>
  ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `${t}_temp_path ${dir}/${name}-${t};`)
    .join(' ');

export function versions(): { node: string; nginx: string; haproxy: string; cpu: string } {
  const sh = (c: string) => execFileSync('sh', ['-c', c], { encoding: 'utf8' }).trim();
  return {
    node: process.versions.node,
    nginx: sh('nginx -v 2>&1').replace('nginx version: ', ''),
    haproxy: sh('haproxy -v | head -1').split(' ')[2],
    cpu: sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
  };
}

/**
 * A JSON array of varied records (ids, names, e-mail addresses, dates, prices, tags, free text), as an
 * API would return, at most `bytes` long (whole records only). Seeded: the same bytes on every run,
 * so compressed sizes compare across runs.
 */
export function sampleJson(bytes: number): string {
  let seed = 0x2545f491;
  const rand = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const first =
    'Ada Alan Barbara Claude Donald Edsger Frances Grace Guido Hedy Ivan Joan Ken Leslie Linus Margaret Niklaus Radia Rob Sophie Tim Vint Whitfield Yukihiro'.split(
      ' ',
    );
  const last =
    'Lovelace Turing Liskov Shannon Knuth Dijkstra Allen Hopper Rossum Lamarr Sutherland Clarke Thompson Lamport Torvalds Hamilton Wirth Perlman Pike Wilson Berners-Lee Cerf Diffie Matsumoto'.split(
      ' ',
    );
  const domains = ['example.com', 'example.org', 'mail.example.net', 'corp.example', 'uni.example.edu'];
  const cities =
    'Lisbon Oslo Kyoto Nairobi Lima Tallinn Quebec Porto Ghent Adelaide Bergen Cusco Dakar Hanoi Izmir Lyon Malmo Perth Riga Turin'.split(
      ' ',
    );
  const streets = 'Oak Maple Harbour Station Mill Church Orchard Market Bridge Castle Garden Meadow'.split(
    ' ',
  );
  const statuses = ['pending', 'paid', 'shipped', 'delivered', 'returned', 'cancelled'];
  const tags = 'new sale eco bulk gift fragile imported limited refurbished clearance premium seasonal'.split(
    ' ',
  );
  const words =
    'the a of to and in quick reliable compact sturdy light handmade adjustable wireless ergonomic steel cotton bamboo leather ceramic glass battery charger cable lamp desk chair bottle kettle blanket jacket backpack notebook pen speaker keyboard monitor with for every day use travel office kitchen garden outdoor indoor warranty included colour size fits most easy clean assemble'.split(
      ' ',
    );
  const items: string[] = [];
  let length = 2;
  for (let id = 1; ; id++) {
    const fn = pick(first);
    const ln = pick(last);
    const record = {
      id,
      sku: `${pick(tags).slice(0, 3).toUpperCase()}-${(int(0xffffff) + 0x1000000).toString(16).slice(1)}`,
      customer: {
        name: `${fn} ${ln}`,
        email: `${fn}.${ln}${int(1000)}@${pick(domains)}`.toLowerCase(),
        city: pick(cities),
        address: `${1 + int(9999)} ${pick(streets)} ${pick(['St', 'Ave', 'Rd', 'Lane'])}`,
        zip: String(10000 + int(90000)),
      },
      created: new Date(1_600_000_000_000 + int(100_000_000) * 1000).toISOString(),
      status: pick(statuses),
      price: int(100_000) / 100,
      quantity: 1 + int(50),
      rating: int(51) / 10,
      tags: Array.from({ length: 1 + int(3) }, () => pick(tags)),
      description: Array.from({ length: 6 + int(18) }, () => pick(words)).join(' '),
      active: rand() < 0.7,
    };
    const text = JSON.stringify(record);
    if (length + text.length + (items.length ? 1 : 0) > bytes) break;
    length += text.length + (items.length ? 1 : 0);
    items.push(text);
  }
  return `[${items.join(',')}]`;
}

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  /** The body as sent (still content-coded), chunked framing removed. */
  body: Buffer;
  /** Every byte received: status line, header fields, body and any chunk framing. */
  wire: number;
}

/** One GET on a new connection with `Connection: close`: what came back, and how many bytes. */
export function rawGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.setTimeout(10_000, () => sock.destroy(new Error(`no answer on port ${port} within 10 s`)));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => {
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (e) {
        reject(e);
      }
    });
    const fields = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${fields}Connection: close\r\n\r\n`);
  });
}

function parseResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0)
    throw new Error(`incomplete response head: ${JSON.stringify(raw.subarray(0, 200).toString('latin1'))}`);
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = raw.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', at);
      if (eol < 0) throw new Error('truncated chunked body');
      const size = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!(size >= 0)) throw new Error('bad chunk size');
      if (size === 0) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    body = body.subarray(0, Number(headers['content-length']));
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body, wire: raw.length };
}
