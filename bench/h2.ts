// HTTP/2 over TLS, side by side: Gatehouse, nginx and HAProxy each terminate TLS with h2 on one
// pinned core, in front of the same nginx origin (HTTP/1.1, keep-alive); h2load (nghttp2-client)
// on the other core. Rounds are interleaved; medians and ratios are reported and written to
// bench/results/h2.md. Certificates are made for the run in a temp dir. Loopback only.
//
//   bash bench/run.sh h2      (installs nginx, haproxy, nghttp2-client when missing)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 10);
const node = process.execPath;

// ---------------------------------------------------------------- certificates
const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { cwd: dir, stdio: 'pipe' });
sh('openssl ecparam -name prime256v1 -genkey -noout -out ca.key');
sh(
  'openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=Bench CA" -out ca.pem -addext basicConstraints=critical,CA:TRUE',
);
sh('openssl ecparam -name prime256v1 -genkey -noout -out leaf.key');
sh('openssl req -new -key leaf.key -subj "/CN=localhost" -out leaf.csr');
writeFileSync(
  join(dir, 'leaf.ext'),
  'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
);
sh(
  'openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 -extfile leaf.ext -out leaf.pem',
);
writeFileSync(
  join(dir, 'haproxy.pem'),
  readFileSync(join(dir, 'leaf.pem'), 'utf8') + readFileSync(join(dir, 'leaf.key'), 'utf8'),
);
const cert = join(dir, 'leaf.pem');
const key = join(dir, 'leaf.key');

// ---------------------------------------------------------------- origin
const files = join(dir, 'www');
mkdirSync(files, { recursive: true });
writeFileSync(join(files, '100b'), 'x'.repeat(100));
const originPort = await freePort();
writeFileSync(
  join(dir, 'h2-origin.conf'),
  `${nginxCommon('h2-origin')}
http { access_log off; keepalive_requests 10000000; keepalive_timeout 120s; ${nginxTemps('h2-origin')}
  server { listen 127.0.0.1:${originPort} backlog=4096; root ${files}; location / { } } }`,
);
run('taskset', ['-c', LOAD_CORE, 'nginx', '-c', join(dir, 'h2-origin.conf')], 'origin');
await waitFor(originPort);

// ---------------------------------------------------------------- proxies
/** Gatehouse; `compat`: HTTP/2 through node:http2's compatibility layer (GATEHOUSE_H2_COMPAT=1). */
function startGatehouse(port: number, compat: boolean): void {
  const cfg = join(dir, `h2-gatehouse${compat ? '-compat' : ''}.yaml`);
  writeFileSync(
    cfg,
    `listeners:
  - name: secure
    address: "127.0.0.1:${port}"
    tls: { certificates: [{ certFile: ${cert}, keyFile: ${key} }] }
limits: { keepAliveTimeout: 120s }
accessLog: { path: ${dir}/h2-gatehouse${compat ? '-compat' : ''}-access.log }
routes: [{ name: all, upstream: origin }]
upstreams: { origin: { targets: [{ url: "http://127.0.0.1:${originPort}" }], timeouts: { keepAlive: 60s } } }
`,
  );
  const cmd = ['taskset', '-c', PROXY_CORE, node, join(ROOT, 'src', 'cli.ts'), 'run', '-c', cfg];
  if (compat) run('env', ['GATEHOUSE_H2_COMPAT=1', ...cmd], 'gatehouse (h2 compat)');
  else run(cmd[0], cmd.slice(1), 'gatehouse');
}

const proxies: { name: string; start(port: number): void }[] = [
  { name: 'gatehouse', start: (port) => startGatehouse(port, false) },
  { name: 'gatehouse, h2 compat', start: (port) => startGatehouse(port, true) },
  {
    name: 'nginx',
    start(port) {
      const conf = join(dir, 'h2-nginx.conf');
      writeFileSync(
        conf,
        `${nginxCommon('h2-proxy')}
http { access_log ${dir}/h2-nginx-access.log; keepalive_requests 10000000; keepalive_timeout 120s; ${nginxTemps('h2-proxy')}
  upstream origin { server 127.0.0.1:${originPort}; keepalive 256; }
  server { listen 127.0.0.1:${port} ssl http2; ssl_certificate ${cert}; ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3; http2_max_concurrent_streams 100;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; } } }`,
      );
      run('taskset', ['-c', PROXY_CORE, 'nginx', '-c', conf], 'nginx');
    },
  },
  {
    name: 'haproxy',
    start(port) {
      const conf = join(dir, 'h2-haproxy.cfg');
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
  option forwardfor
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend fe
  bind 127.0.0.1:${port} ssl crt ${dir}/haproxy.pem alpn h2,http/1.1
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:${originPort}
`,
      );
      run('taskset', ['-c', PROXY_CORE, 'haproxy', '-f', conf], 'haproxy', () => {});
    },
  },
];

interface Sample {
  rps: number;
  failed: number;
  p50: number;
  p99: number;
}

function h2load(port: number, seconds: number): Sample {
  const out = execFileSync(
    'taskset',
    [
      '-c',
      LOAD_CORE,
      'h2load',
      '-D',
      String(seconds),
      '-c',
      String(CLIENTS),
      '-m',
      String(STREAMS),
      '-t',
      '1',
      `https://127.0.0.1:${port}/100b`,
    ],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  const rps = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out)?.[1]);
  const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? 0) + Number(/(\d+) errored/.exec(out)?.[1] ?? 0);
  // "time for request:  min  max  mean  sd  +/- sd" — h2load gives no percentiles; report mean and max.
  const line = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  const ms = (v: string | undefined) => {
    const m = /([\d.]+)(us|ms|s)/.exec(v ?? '');
    return m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : Number.NaN;
  };
  return { rps, failed, p50: ms(line?.[3]), p99: ms(line?.[2]) };
}

const ports = new Map<string, number>();
for (const p of proxies) {
  const port = await freePort();
  ports.set(p.name, port);
  p.start(port);
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('h2load', ['-n', '10', '-c', '1', `https://127.0.0.1:${port}/100b`], { stdio: 'pipe' });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  h2load(port, 2); // warm-up
}
const results = new Map<string, Sample[]>();
for (let round = 1; round <= ROUNDS; round++) {
  for (const p of proxies) {
    const s = h2load(ports.get(p.name) as number, SECONDS);
    results.set(p.name, [...(results.get(p.name) ?? []), s]);
    process.stderr.write(
      `  round ${round} ${p.name.padEnd(10)} ${s.rps.toFixed(0).padStart(7)} req/s${s.failed ? `  FAILED ${s.failed}` : ''}\n`,
    );
  }
}
stopAll();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const v = versions();
const gh = results.get('gatehouse') ?? [];
const lines = [
  `Run ${new Date().toISOString().slice(0, 16)}Z on ${v.cpu}; node ${v.node}, nginx ${v.nginx}, haproxy ${v.haproxy}.`,
  `h2load (1 thread, ${CLIENTS} connections × ${STREAMS} streams, ${SECONDS}s, 100-byte response) over TLS 1.3 with h2 to each proxy`,
  `(pinned to core ${PROXY_CORE}), HTTP/1.1 keep-alive to an nginx origin; ${ROUNDS} interleaved rounds, medians.`,
  '',
  '| proxy | req/s | mean ms | max ms | failed | Gatehouse ÷ this | per round |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...proxies.map((p) => {
    const xs = results.get(p.name) ?? [];
    const rps = median(xs.map((s) => s.rps));
    const paired = xs.map((s, i) => gh[i].rps / s.rps);
    return `| ${p.name} | ${rps.toFixed(0)} | ${median(xs.map((s) => s.p50)).toFixed(2)} | ${median(xs.map((s) => s.p99)).toFixed(1)} | ${xs.reduce((a, s) => a + s.failed, 0)} | ${p.name === 'gatehouse' ? '—' : (median(gh.map((s) => s.rps)) / rps).toFixed(2)} | ${p.name === 'gatehouse' ? '—' : `${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)}`} |`;
  }),
];
const report = lines.join('\n');
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'h2.md'), `${report}\n`);
process.stdout.write(`${report}\n`);
process.exit(0);
