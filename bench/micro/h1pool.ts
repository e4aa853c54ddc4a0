// Requests/s and CPU µs per request through our upstream HTTP/1.1 pool (src/upstream/h1pool) and
// through undici's Pool, configured as target.ts configures them, driven the way forward.ts drives
// them (dispatch with a flat header list and a long-lived handler object), against a local origin
// answering 100 B. Keep-alive, 50 requests in flight, interleaved rounds, medians.
//
//   node bench/micro/h1pool.ts [--rounds 5] [--seconds 4] [--concurrency 50] [--origin raw|node] [--inline]
//                              [--clients undici,gatehouse] [--size 100]
//
// The origin runs in a child process (pinned to the other core with taskset when there is one), so the
// CPU time measured in this process is the client's alone. --inline runs it in this process instead.
// --origin raw: a `net` server writing a canned response per request head; node: a node:http server.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { type Dispatcher, Pool } from 'undici';
import { H1Pool } from '../../src/upstream/h1pool/pool.ts';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '50' },
    origin: { type: 'string', default: 'raw' },
    inline: { type: 'boolean', default: false },
    clients: { type: 'string', default: 'undici,gatehouse' },
    size: { type: 'string', default: '100' },
  },
});

const BODY = Buffer.alloc(Number(args.size), 'x');
const RESPONSE = Buffer.concat([
  Buffer.from(
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sat, 28 Nov 2026 08:00:00 GMT\r\n' +
      `Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: ${BODY.length}\r\n\r\n`,
    'latin1',
  ),
  BODY,
]);

/** Starts the origin in this process; resolves with its port. */
async function startOrigin(kind: string): Promise<number> {
  if (kind === 'node') {
    const server = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
      res.end(BODY);
    });
    server.keepAliveTimeout = 5000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as { port: number }).port;
  }
  // raw: one canned response per request head (heads end with CRLFCRLF; no request bodies here)
  const server = createServer((s: Socket) => {
    s.setNoDelay(true);
    let tail = 0; // bytes of "\r\n\r\n" matched at the end of the last chunk
    s.on('data', (chunk: Buffer) => {
      let n = 0;
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i];
        if (c === (tail === 0 || tail === 2 ? 13 : 10)) {
          if (++tail === 4) {
            n++;
            tail = 0;
          }
        } else tail = c === 13 ? 1 : 0;
      }
      if (n === 1) s.write(RESPONSE);
      else if (n > 1) s.write(Buffer.concat(Array.from({ length: n }, () => RESPONSE)));
    });
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

interface Client {
  dispatch(opts: unknown, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
}

function makePool(kind: string, origin: string): Client {
  const common = {
    connectTimeout: 5000,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
    keepAliveTimeout: 4000,
  };
  if (kind === 'gatehouse') {
    return new H1Pool(origin, {
      connections: 256,
      ...common,
      keepAliveMaxTimeout: 4000,
      maxHeaderSize: 64 * 1024,
    }) as unknown as Client;
  }
  return new Pool(origin, {
    connections: 256,
    pipelining: 1,
    connect: { timeout: common.connectTimeout },
    allowH2: false,
    headersTimeout: common.headersTimeout,
    bodyTimeout: common.bodyTimeout,
    keepAliveTimeout: common.keepAliveTimeout,
    keepAliveMaxTimeout: 4000,
    maxHeaderSize: 64 * 1024,
  }) as unknown as Client;
}

/** One request loop: a long-lived handler that dispatches the next request when one ends. */
class Loop implements Dispatcher.DispatchHandler {
  readonly pool: Client;
  readonly headers: string[];
  running = true;
  done = 0;
  errors = 0;
  bytes = 0;
  constructor(pool: Client, id: number) {
    this.pool = pool;
    // what forward.ts sends: the client's headers, then the forwarding ones
    this.headers = [
      'user-agent',
      'wrk',
      'accept',
      '*/*',
      'host',
      'example.com',
      'x-forwarded-for',
      '127.0.0.1',
      'x-forwarded-proto',
      'http',
      'x-real-ip',
      '127.0.0.1',
      'x-request-id',
      `0f8fad5b-d9cb-469f-a165-${String(id).padStart(12, '0')}`,
      'via',
      '1.1 gatehouse',
      'x-forwarded-host',
      'example.com',
    ];
  }
  send(): void {
    this.pool.dispatch(
      {
        method: 'GET',
        path: '/100b',
        headers: this.headers,
        body: null,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      },
      this,
    );
  }
  onRequestStart(): void {}
  onResponseStart(): void {}
  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytes += chunk.length;
  }
  onResponseEnd(): void {
    this.done++;
    if (this.running) this.send();
  }
  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.errors++;
    if (this.errors < 3) console.error(err);
    if (this.running) setTimeout(() => this.send(), 10);
  }
}

interface Sample {
  rps: number;
  cpuUs: number;
  latencyUs: number;
  errors: number;
}

async function round(kind: string, origin: string, seconds: number, concurrency: number): Promise<Sample> {
  const pool = makePool(kind, origin);
  const loops = Array.from({ length: concurrency }, (_, i) => new Loop(pool, i));
  for (const l of loops) l.send();
  await new Promise((r) => setTimeout(r, 1000)); // warm-up: connections open, code optimised
  const done0 = loops.reduce((a, l) => a + l.done, 0);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const done = loops.reduce((a, l) => a + l.done, 0) - done0;
  for (const l of loops) l.running = false;
  await new Promise((r) => setTimeout(r, 100));
  if (process.env.H1POOL_BENCH_DEBUG) console.log('connections', (pool as unknown as { size: number }).size);
  await pool.close();
  const rps = (done / (t1 - t0)) * 1000;
  return {
    rps,
    cpuUs: (cpu.user + cpu.system) / done,
    latencyUs: (concurrency / rps) * 1e6,
    errors: loops.reduce((a, l) => a + l.errors, 0),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function main(): Promise<void> {
  const rounds = Number(args.rounds);
  const seconds = Number(args.seconds);
  const concurrency = Number(args.concurrency);
  let port: number;
  let child: ReturnType<typeof spawn> | undefined;
  if (args.inline) {
    port = await startOrigin(args.origin as string);
  } else {
    const argv = [
      import.meta.filename,
      'origin',
      '--origin',
      args.origin as string,
      '--size',
      args.size as string,
    ];
    const pin = cpus().length > 1;
    child = pin
      ? spawn('taskset', ['-c', '1', process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = await once(child.stdout!, 'data');
    port = Number(String(line).trim());
  }
  const origin = `http://127.0.0.1:${port}`;
  const kinds = (args.clients as string).split(',');
  const samples: Record<string, Sample[]> = { undici: [], gatehouse: [] };
  console.log(
    `node ${process.version}, ${args.origin} origin ${args.inline ? 'in this process' : 'in a child process'}, ` +
      `${concurrency} in flight, ${rounds} rounds of ${seconds}s, ${args.size} B responses`,
  );
  for (let r = 0; r < rounds; r++) {
    for (const kind of r % 2 === 0 ? kinds : [...kinds].reverse()) {
      const s = await round(kind, origin, seconds, concurrency);
      samples[kind].push(s);
      console.log(
        `  round ${r + 1} ${kind.padEnd(9)} ${s.rps.toFixed(0).padStart(7)} req/s  ${s.cpuUs.toFixed(2).padStart(6)} CPU µs/req  errors ${s.errors}`,
      );
    }
  }
  console.log('\n| client | req/s | CPU µs/req (client) | mean latency µs | errors |');
  console.log('|---|---:|---:|---:|---:|');
  for (const kind of kinds) {
    const s = samples[kind];
    if (s.length === 0) continue;
    console.log(
      `| ${kind === 'gatehouse' ? 'gatehouse H1Pool' : 'undici Pool'} | ${median(s.map((x) => x.rps)).toFixed(0)} | ${median(s.map((x) => x.cpuUs)).toFixed(2)} | ${median(s.map((x) => x.latencyUs)).toFixed(0)} | ${s.reduce((a, x) => a + x.errors, 0)} |`,
    );
  }
  if (samples.gatehouse.length > 0 && samples.undici.length > 0) {
    const ratio = median(samples.gatehouse.map((x) => x.rps)) / median(samples.undici.map((x) => x.rps));
    console.log(`\ngatehouse ÷ undici: ${ratio.toFixed(2)}× requests/s`);
  }
  child?.kill();
  if (args.inline) process.exit(0); // the origin in this process would keep it running
}

if (positionals[0] === 'origin') {
  const port = await startOrigin(args.origin as string);
  process.stdout.write(`${port}\n`);
} else {
  await main();
}
