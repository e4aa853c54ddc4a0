// Failover, side by side: each proxy (Gatehouse, nginx, HAProxy) in front of the same three
// backends, under steady load from wrk; mid-run one backend is killed with SIGKILL (connections
// reset, then refused), and in a second scenario frozen with SIGSTOP (connections accepted by the
// kernel, never answered). Reports the requests sent, the ones that failed (non-2xx and socket
// errors, as wrk counts them; wrk gives up on a request after 2 s), and how long after the fault
// the proxy declared the backend out (its own log line, timestamped as it arrives). All three get
// the same 1 s connect and per-try response timeouts. Everything on 127.0.0.1; every process it
// starts is stopped when it ends.
//
//   bash bench/failover.sh        (installs nginx, haproxy and wrk when missing)
//   FAILOVER_SECONDS=12 FAILOVER_KILL_AT=4 FAILOVER_CONNECTIONS=32 ...
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

const SECONDS = Number(process.env.FAILOVER_SECONDS ?? 10);
const KILL_AT = Number(process.env.FAILOVER_KILL_AT ?? 3);
const CONNECTIONS = Number(process.env.FAILOVER_CONNECTIONS ?? 16);
const node = process.execPath;

interface Proxy {
  name: string;
  /** How it notices a dead backend, for the report. */
  detection: string;
  /** Starts the proxy; `out` is told when it declares the backend on `deadPort` out. */
  start(port: number, backends: number[], out: () => void): ChildProcess;
}

const proxies: Proxy[] = [
  {
    name: 'gatehouse',
    detection:
      'passive: 5 consecutive failures eject; active: GET / every 1s, 2 failures; retries elsewhere, per-try timeout 1s',
    start(port, backends, out) {
      const cfg = join(dir, `failover-gatehouse-${port}.yaml`);
      writeFileSync(
        cfg,
        `listeners: [{ name: web, address: "127.0.0.1:${port}" }]
accessLog: { path: ${join(dir, `failover-gatehouse-${port}.log`)} }
routes: [{ name: all, upstream: u }]
upstreams:
  u:
    targets: [${backends.map((p) => `{ url: "http://127.0.0.1:${p}" }`).join(', ')}]
    timeouts: { connect: 1s, keepAlive: 60s }
    retry: { perTryTimeout: 1s }
    healthCheck: { path: /, interval: 1s, timeout: 1s, unhealthyAfter: 2, healthyAfter: 2 }
`,
      );
      const dead = `:${backends[2]} `;
      return run(
        'taskset',
        ['-c', PROXY_CORE, node, join(ROOT, 'src', 'cli.ts'), 'run', '-c', cfg],
        'gatehouse',
        (text) => {
          for (const line of text.split('\n'))
            if (line.includes(dead) && /is ejected|is DOWN/.test(line)) out();
        },
      );
    },
  },
  {
    name: 'nginx',
    detection:
      'passive only (open-source nginx): max_fails=1 fail_timeout=10s; proxy_next_upstream error timeout; read timeout 1s',
    start(port, backends, out) {
      const conf = join(dir, `failover-nginx-${port}.conf`);
      const errorLog = join(dir, `failover-nginx-${port}.error.log`);
      writeFileSync(
        conf,
        `${nginxCommon('failover-nginx').replace(/error_log \S+/, `error_log ${errorLog}`)}
http { access_log off; keepalive_timeout 120s; ${nginxTemps('failover-nginx')}
  upstream be { ${backends.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=10s;`).join(' ')} keepalive 64; }
  server { listen 127.0.0.1:${port} backlog=4096;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_connect_timeout 1s; proxy_read_timeout 1s; proxy_next_upstream error timeout; } } }`,
      );
      watchFile(
        errorLog,
        new RegExp(`upstream server temporarily disabled.*127\\.0\\.0\\.1:${backends[2]}`),
        out,
      );
      return run('taskset', ['-c', PROXY_CORE, 'nginx', '-c', conf], 'nginx');
    },
  },
  {
    name: 'haproxy',
    detection:
      'active: option httpchk GET /, inter 1s fall 2; passive: observe layer7 error-limit 5 on-error mark-down; retries 3, redispatch, timeout server 1s',
    start(port, backends, out) {
      const conf = join(dir, `failover-haproxy-${port}.cfg`);
      writeFileSync(
        conf,
        `global
  nbthread 1
  maxconn 8000
defaults
  mode http
  option http-keep-alive
  timeout connect 1s
  timeout client 60s
  timeout server 1s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  http-reuse always
  option httpchk GET /
  default-server check inter 1s fall 2 rise 2 observe layer7 error-limit 5 on-error mark-down
${backends.map((p, i) => `  server s${i + 1} 127.0.0.1:${p}`).join('\n')}
`,
      );
      return run('taskset', ['-c', PROXY_CORE, 'haproxy', '-f', conf], 'haproxy', (text) => {
        if (/Server be\/s3 is DOWN/.test(text)) out();
      });
    },
  },
];

/** Polls a file for a line matching `re` (nginx writes its error log; it has no event stream). */
function watchFile(path: string, re: RegExp, found: () => void): void {
  const timer = setInterval(() => {
    if (existsSync(path) && re.test(readFileSync(path, 'utf8'))) {
      clearInterval(timer);
      found();
    }
  }, 10);
  timer.unref();
}

async function origins(): Promise<{ ports: number[]; procs: ChildProcess[] }> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const procs = ports.map((p) =>
    run('taskset', ['-c', LOAD_CORE, node, join(ROOT, 'scripts', 'tiny-origin.ts'), String(p)], 'origin'),
  );
  for (const p of ports) await waitFor(p, '/');
  return { ports, procs };
}

interface Row {
  scenario: string;
  proxy: string;
  detection: string;
  sent: number;
  failed: number;
  rps: number;
  outMs: number | null;
}

function wrk(port: number): Promise<{ sent: number; failed: number; rps: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'taskset',
      ['-c', LOAD_CORE, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, `http://127.0.0.1:${port}/`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.on('error', reject);
    child.on('exit', () => {
      const sent = Number(/(\d+) requests in/.exec(out)?.[1]);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
      resolve({ sent, failed: non2xx + sockErrors, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]) });
    });
  });
}

const rows: Row[] = [];
const scenarios = [
  { name: 'killed (SIGKILL)', signal: 'SIGKILL' as const },
  { name: 'hung (SIGSTOP)', signal: 'SIGSTOP' as const },
];
for (const scenario of scenarios)
  for (const p of proxies) {
    const { ports, procs } = await origins();
    const port = await freePort();
    let killedAt = 0;
    let outAt = 0;
    const proxy = p.start(port, ports, () => {
      if (killedAt > 0 && outAt === 0) outAt = performance.now();
    });
    await waitFor(port, '/');
    const load = wrk(port);
    await new Promise((r) => setTimeout(r, KILL_AT * 1000));
    killedAt = performance.now();
    procs[2].kill(scenario.signal);
    const result = await load;
    rows.push({
      scenario: scenario.name,
      proxy: p.name,
      detection: p.detection,
      ...result,
      outMs: outAt > 0 ? outAt - killedAt : null,
    });
    process.stderr.write(
      `  ${scenario.name.padEnd(17)} ${p.name.padEnd(10)} sent ${result.sent}, failed ${result.failed}, out after ${outAt > 0 ? `${(outAt - killedAt).toFixed(0)} ms` : 'never'}\n`,
    );
    proxy.kill('SIGTERM');
    for (const o of procs) o.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    if (p.name === 'gatehouse') {
      // The access log says why a request failed, when one did.
      const failed = readFileSync(join(dir, `failover-gatehouse-${port}.log`), 'utf8')
        .split('\n')
        .filter((l) => l !== '' && !l.includes('"status":200,') && !l.includes('client_closed'));
      for (const l of failed.slice(0, 5)) process.stderr.write(`    ${l}\n`);
    }
  }
stopAll();

const v = versions();
const lines = [
  `Run ${new Date().toISOString().slice(0, 16)}Z on ${v.cpu}; node ${v.node}, nginx ${v.nginx}, haproxy ${v.haproxy}.`,
  `wrk (1 thread, ${CONNECTIONS} connections, ${SECONDS}s) through each proxy (pinned to core ${PROXY_CORE}) to three`,
  `Node backends (core ${LOAD_CORE}); ${KILL_AT}s in, the third is killed (SIGKILL) or frozen (SIGSTOP). "Out after" is`,
  "the time from the fault to the proxy's own log line declaring the backend out.",
  '',
  '| backend | proxy | requests sent | failed | req/s | out after (ms) | detection |',
  '|---|---|---:|---:|---:|---:|---|',
  ...rows.map(
    (r) =>
      `| ${r.scenario} | ${r.proxy} | ${r.sent} | ${r.failed} | ${r.rps.toFixed(0)} | ${r.outMs === null ? 'never' : r.outMs.toFixed(0)} | ${r.detection} |`,
  ),
];
const report = lines.join('\n');
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'failover.md'), `${report}\n`);
process.stdout.write(`${report}\n`);
process.exit(0);
