// Runs each proxy alone on core 0 in front of the same nginx origin, with wrk on core 1, for a
// 100-byte and a 1 MiB response; rounds are interleaved (every proxy once per round) so drift
// on the machine hits all of them alike. Reports medians and ratios, and writes
// bench/results/latest.md. Everything listens on 127.0.0.1 and stops by itself.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../test/helpers/net.ts';
import {
  dir,
  LOAD_CORE,
  nginxCommon,
  nginxTemps,
  PROXY_CORE,
  ROOT,
  run,
  stopAll,
  versions,
  waitFor,
} from './lib.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const ONLY = process.env.BENCH_ONLY?.split(',');

// ---------------------------------------------------------------- the origin: nginx, static files
const files = join(dir, 'www');
mkdirSync(files);
writeFileSync(join(files, '100b'), 'x'.repeat(100));
writeFileSync(join(files, '1m'), Buffer.alloc(1024 * 1024, 'y'));
const originPort = await freePort();
writeFileSync(
  join(dir, 'origin.conf'),
  `${nginxCommon('origin')}
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 10000000; keepalive_timeout 120s; ${nginxTemps('origin')}
  server { listen 127.0.0.1:${originPort} backlog=4096; root ${files}; location / { } } }`,
);
run('taskset', ['-c', LOAD_CORE, 'nginx', '-c', join(dir, 'origin.conf')], 'origin');
await waitFor(originPort);
const origin = `http://127.0.0.1:${originPort}`;

// ---------------------------------------------------------------- the proxies
interface Proxy {
  name: string;
  start(port: number): ChildProcess;
}

const node = process.execPath;

/** Gatehouse with routing (three routes, the match is the last) and forwarding headers, as deployed. */
function startGatehouse(
  port: number,
  accessLog: boolean,
  metrics = false,
  root = ROOT,
  engine = 'gatehouse',
): ChildProcess {
  const cfg = join(dir, `gatehouse-${port}.yaml`);
  writeFileSync(
    cfg,
    `listeners: [{ name: web, address: "127.0.0.1:${port}"${engine === 'gatehouse' ? '' : `, engine: ${engine}`} }]
accessLog: { enabled: ${accessLog}, path: ${dir}/gatehouse-access.log }
${metrics ? `admin: { address: "127.0.0.1:0", token: bench-admin-token-0123456789 }` : ''}
limits: { keepAliveTimeout: 120s }
routes:
  - { name: admin, match: { hosts: [admin.example.com] }, upstream: origin }
  - { name: api, match: { pathPrefix: /api/ }, stripPrefix: true, upstream: origin }
  - { name: site, match: { pathPrefix: / }, upstream: origin }
upstreams:
  origin: { targets: [{ url: "${origin}" }], timeouts: { keepAlive: 60s } }
`,
  );
  return run('taskset', ['-c', PROXY_CORE, node, join(root, 'src', 'cli.ts'), 'run', '-c', cfg], 'gatehouse');
}
/**
 * BENCH_BASELINE=DIR: also run the Gatehouse checked out in DIR (an earlier commit, e.g. made with
 * `git worktree add DIR <commit>`), same config, in the same interleaved rounds: before and after.
 */
const BASELINE = process.env.BENCH_BASELINE;
const allProxies: Proxy[] = [
  {
    name: 'gatehouse',
    start: (port) => startGatehouse(port, true),
  },
  ...(BASELINE
    ? [{ name: 'gatehouse (baseline)', start: (port: number) => startGatehouse(port, true, false, BASELINE) }]
    : []),
  {
    name: 'gatehouse, engine: node',
    start: (port) => startGatehouse(port, true, false, ROOT, 'node'),
  },
  {
    name: 'gatehouse, access log off',
    start: (port) => startGatehouse(port, false),
  },
  {
    name: 'gatehouse, metrics on',
    start: (port) => startGatehouse(port, true, true),
  },
  {
    name: 'gatehouse, metrics on, log off',
    start: (port) => startGatehouse(port, false, true),
  },
  {
    name: 'nginx',
    start(port) {
      const conf = join(dir, 'nginx-proxy.conf');
      writeFileSync(
        conf,
        `${nginxCommon('proxy')}
http { access_log ${dir}/nginx-access.log; keepalive_requests 10000000; keepalive_timeout 120s; ${nginxTemps('proxy')}
  upstream origin { server 127.0.0.1:${originPort}; keepalive 256; keepalive_requests 10000000; }
  server { listen 127.0.0.1:${port} backlog=4096;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Real-IP $remote_addr; } } }`,
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
  maxconn 8000
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  option http-keep-alive
  option forwardfor
  timeout connect 5s
  timeout client 120s
  timeout server 120s
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
  {
    name: 'node-undici (minimal)',
    start: (port) =>
      run(
        'taskset',
        ['-c', PROXY_CORE, node, join(ROOT, 'bench', 'peers', 'node-proxy.ts'), String(port), origin],
        'node',
      ),
  },
  {
    name: '@fastify/http-proxy',
    start: (port) =>
      run(
        'taskset',
        ['-c', PROXY_CORE, node, join(ROOT, 'bench', 'peers', 'fastify-proxy.ts'), String(port), origin],
        'fastify',
      ),
  },
];
const proxies = allProxies.filter((p) => !ONLY || ONLY.some((o) => p.name.startsWith(o)));

// ---------------------------------------------------------------- load
interface Sample {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function ms(v: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(v);
  if (!m) return Number.NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

function wrk(port: number, path: string, seconds: number): Sample {
  const out = execFileSync(
    'taskset',
    [
      '-c',
      LOAD_CORE,
      'wrk',
      '-t1',
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      '--latency',
      `http://127.0.0.1:${port}${path}`,
    ],
    { encoding: 'utf8' },
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50, p99, errors };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const sizes = [
  { label: '100 B', path: '/100b' },
  { label: '1 MiB', path: '/1m' },
];
const results = new Map<string, Sample[]>(); // key: proxy|size

const ports = new Map<string, number>();
for (const p of proxies) {
  const port = await freePort();
  ports.set(p.name, port);
  p.start(port);
  await waitFor(port);
  wrk(port, '/100b', 2); // warm-up: JIT, pools
  wrk(port, '/1m', 1);
}

process.stderr.write(
  `bench: ${proxies.length} proxies, ${ROUNDS} rounds x ${SECONDS}s, ${CONNECTIONS} connections\n`,
);
for (let round = 1; round <= ROUNDS; round++) {
  for (const size of sizes) {
    for (const p of proxies) {
      const s = wrk(ports.get(p.name) as number, size.path, SECONDS);
      const key = `${p.name}|${size.label}`;
      results.set(key, [...(results.get(key) ?? []), s]);
      process.stderr.write(
        `  round ${round} ${size.label.padEnd(6)} ${p.name.padEnd(24)} ${s.rps.toFixed(0).padStart(7)} req/s  p99 ${s.p99.toFixed(2)} ms${s.errors ? `  ERRORS ${s.errors}` : ''}\n`,
      );
    }
  }
}
stopAll();

// ---------------------------------------------------------------- report
const v = versions();
const lines: string[] = [];
lines.push(
  `Run ${new Date().toISOString().slice(0, 16)}Z on ${v.cpu}; node ${v.node}, nginx ${v.nginx}, haproxy ${v.haproxy}.`,
);
lines.push(
  `Each proxy alone on one pinned core, wrk (1 thread, ${CONNECTIONS} connections) and the nginx origin on the other;`,
);
lines.push(
  `${ROUNDS} interleaved rounds of ${SECONDS}s, medians. Ratios are Gatehouse's requests/s over the peer's.`,
);
lines.push('');
for (const size of sizes) {
  lines.push(`**${size.label} response**`, '');
  lines.push('| proxy | req/s | p50 ms | p99 ms | errors | Gatehouse ÷ this | per round |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  const ghRounds = (results.get(`gatehouse|${size.label}`) ?? []).map((s) => s.rps);
  const gh = median(ghRounds);
  for (const p of proxies) {
    const xs = results.get(`${p.name}|${size.label}`) ?? [];
    const rps = median(xs.map((s) => s.rps));
    const paired = xs.map((s, i) => ghRounds[i] / s.rps);
    const range =
      p.name === 'gatehouse' ? '—' : `${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)}`;
    lines.push(
      `| ${p.name} | ${rps.toFixed(0)} | ${median(xs.map((s) => s.p50)).toFixed(2)} | ${median(xs.map((s) => s.p99)).toFixed(2)} | ${xs.reduce((a, s) => a + s.errors, 0)} | ${p.name === 'gatehouse' ? '—' : (gh / rps).toFixed(2)} | ${range} |`,
    );
  }
  lines.push('');
}
const report = lines.join('\n');
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'latest.md'), `${report}\n`);
process.stdout.write(`${report}\n`);
process.exit(0);
