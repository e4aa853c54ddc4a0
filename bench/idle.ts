// Memory with many idle keep-alive clients: each proxy in turn (Gatehouse on both engines, nginx,
// HAProxy) gets IDLE_CONNECTIONS client connections that each make one request and then stay open
// and idle; the proxy's resident memory (VmRSS) is read before and with them. Everything listens
// on 127.0.0.1 and stops by itself. (taskset execs the proxy, so the child's pid is the proxy's.) Run: `bash bench/run.sh idle` (IDLE_CONNECTIONS, default 10000).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../test/helpers/net.ts';
import { dir, nginxCommon, nginxTemps, PROXY_CORE, ROOT, run, stopAll, versions, waitFor } from './lib.ts';

const N = Number(process.env.IDLE_CONNECTIONS ?? 10000);
const node = process.execPath;

const files = join(dir, 'www');
mkdirSync(files);
writeFileSync(join(files, '100b'), 'x'.repeat(100));
const originPort = await freePort();
writeFileSync(
  join(dir, 'origin.conf'),
  `${nginxCommon('origin')}
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s; ${nginxTemps('origin')}
  server { listen 127.0.0.1:${originPort} backlog=4096; root ${files}; location / { } } }`,
);
run('nginx', ['-c', join(dir, 'origin.conf')], 'origin');
await waitFor(originPort);

interface Proxy {
  name: string;
  start(port: number): import('node:child_process').ChildProcess;
}

function gatehouse(engine: string): Proxy['start'] {
  return (port) => {
    const cfg = join(dir, `gatehouse-${port}.yaml`);
    writeFileSync(
      cfg,
      `listeners: [{ name: web, address: "127.0.0.1:${port}", engine: ${engine} }]
accessLog: { enabled: false }
limits: { keepAliveTimeout: 300s, headerTimeout: 300s }
routes: [{ name: site, upstream: origin }]
upstreams: { origin: { targets: [{ url: "http://127.0.0.1:${originPort}" }] } }
`,
    );
    return run(
      'taskset',
      ['-c', PROXY_CORE, node, join(ROOT, 'src', 'cli.ts'), 'run', '-c', cfg],
      'gatehouse',
    );
  };
}

const proxies: Proxy[] = [
  { name: 'gatehouse', start: gatehouse('gatehouse') },
  { name: 'gatehouse, engine: node', start: gatehouse('node') },
  {
    name: 'nginx',
    start(port) {
      const conf = join(dir, 'nginx-proxy.conf');
      writeFileSync(
        conf,
        `${nginxCommon('proxy')}
worker_rlimit_nofile 65536;
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s; ${nginxTemps('proxy')}
  upstream origin { server 127.0.0.1:${originPort}; keepalive 64; }
  server { listen 127.0.0.1:${port} backlog=4096;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } } }`.replace(
          'worker_connections 8192',
          `worker_connections ${N + 1024}`,
        ),
      );
      return run('taskset', ['-c', PROXY_CORE, 'nginx', '-c', conf], 'nginx');
    },
  },
  {
    name: 'haproxy',
    start(port) {
      const conf = join(dir, 'haproxy.cfg');
      writeFileSync(
        conf,
        `global
  nbthread 1
  ulimit-n 19999
  maxconn ${N + 50}
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:${originPort}
`,
      );
      return run('taskset', ['-c', PROXY_CORE, 'haproxy', '-f', conf], 'haproxy');
    },
  },
];

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Opens `n` connections that each make one request and stay open. */
async function openIdle(port: number, n: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, () => {
        return new Promise<void>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () =>
            s.write('GET /100b HTTP/1.1\r\nHost: bench\r\n\r\n', 'latin1'),
          );
          let got = '';
          const onData = (c: Buffer) => {
            got += c.toString('latin1');
            if (/\r\n\r\nx{100}$/.test(got)) {
              s.off('data', onData);
              sockets.push(s);
              resolve();
            }
          };
          s.on('data', onData);
          s.once('error', reject);
        });
      }),
    );
  }
  return sockets;
}

const rows: string[] = [];
// HAProxy reserves two descriptors per connection up front (client and server side).
const fdLimit = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
try {
  for (const p of proxies) {
    if (p.name === 'haproxy' && fdLimit < 2 * (N + 50) + 200) {
      rows.push(
        `| haproxy | — | — | — | — (not run: it needs ${2 * (N + 50) + 200} descriptors, the limit here is ${fdLimit}) |`,
      );
      continue;
    }
    const port = await freePort();
    const child = p.start(port);
    await waitFor(port);
    await new Promise((r) => setTimeout(r, 500));
    const before = rssMiB(child.pid as number);
    const sockets = await openIdle(port, N);
    await new Promise((r) => setTimeout(r, 2000));
    const during = rssMiB(child.pid as number);
    for (const s of sockets) s.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    const perConn = ((during - before) * 1024) / N;
    rows.push(
      `| ${p.name} | ${before.toFixed(1)} | ${during.toFixed(1)} | ${(during - before).toFixed(1)} | ${perConn.toFixed(1)} |`,
    );
    process.stderr.write(`${p.name}: ${before.toFixed(1)} MiB idle, ${during.toFixed(1)} MiB with ${N}\n`);
  }
} finally {
  stopAll();
}
const v = versions();
const table = [
  `Run ${new Date().toISOString().slice(0, 16)}Z; node ${v.node}, nginx ${v.nginx}, haproxy ${v.haproxy}.`,
  `${N} client connections, each after one request, held open and idle; VmRSS of the proxy process.`,
  '',
  '| proxy | RSS before, MiB | RSS with the connections, MiB | added, MiB | per connection, KiB |',
  '|---|---:|---:|---:|---:|',
  ...rows,
].join('\n');
process.stdout.write(`${table}\n`);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'idle.md'), `${table}\n`);
