// Runs each proxy alone on core 0 in front of the same nginx origin, with wrk on core 1, and
// reports medians and ratios in bench/results/latest.md. Six groups of rows, each its own set of
// processes, all in the same interleaved rounds (every row once per round) so drift on the machine
// hits all of them alike:
//   plain           proxying a 100-byte and a 1 MiB static file (every peer);
//   cache           a 100-byte response answered from each proxy's cache (checked to be a hit);
//   compress-gzip   a 100 KiB JSON body gzipped on the way (level 6), wrk sending Accept-Encoding: gzip;
//   compress-br     the same with brotli (quality 4), Accept-Encoding: br;
//   static          a 100-byte and a 1 MiB file served from disk by the server itself (no upstream);
//   cache-order     Gatehouse only: cache and compress on one route in both orders, 100 KiB JSON, gzip.
//   waf             Gatehouse only: the same route with and without the WAF (paranoia 1 and 3).
// BENCH_ONLY: comma-separated; a group name (plain, cache, compress-gzip, compress-br, static,
// cache-order, or compress for both compress-*) selects groups, anything else is a row-name prefix
// (gatehouse, nginx, ...). Everything listens on 127.0.0.1 and stops by itself.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { freePort } from '../test/helpers/net.ts';
import {
  dir,
  LOAD_CORE,
  nginxCommon,
  nginxTemps,
  PROXY_CORE,
  ROOT,
  rawGet,
  run,
  sampleJson,
  stopAll,
  versions,
  waitFor,
} from './lib.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const GROUPS = ['plain', 'cache', 'compress-gzip', 'compress-br', 'static', 'cache-order', 'waf'];
/** Selectors naming several groups. `cache` is the cache-hit group only, not `cache-order`. */
const FAMILIES: Record<string, string[]> = { compress: ['compress-gzip', 'compress-br'] };
const groupsOf = (s: string) => FAMILIES[s] ?? (GROUPS.includes(s) ? [s] : []);
const ONLY = process.env.BENCH_ONLY?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const isGroupSelector = (s: string) => groupsOf(s).length > 0;
const onlyGroups = ONLY?.filter(isGroupSelector) ?? [];
const onlyRows = ONLY?.filter((s) => !isGroupSelector(s)) ?? [];
const groupSelected = (key: string) =>
  onlyGroups.length === 0 || onlyGroups.some((s) => groupsOf(s).includes(key));
const rowSelected = (name: string) => onlyRows.length === 0 || onlyRows.some((o) => name.startsWith(o));

// ---------------------------------------------------------------- the origin: nginx, static files
// /100b and /1m as they are; /cacheable/100b the same 100 bytes with Cache-Control: public,
// max-age=3600 (for the cache rows); /data.json 100 KiB of JSON as application/json, and
// /cacheable/data.json the same with that Cache-Control (for the cache-order rows). The static rows
// serve this same directory themselves.
const files = join(dir, 'www');
mkdirSync(files);
writeFileSync(join(files, '100b'), 'x'.repeat(100));
writeFileSync(join(files, '1m'), Buffer.alloc(1024 * 1024, 'y'));
const json = sampleJson(100 * 1024);
writeFileSync(join(files, 'data.json'), json);
const originPort = await freePort();
writeFileSync(
  join(dir, 'origin.conf'),
  `${nginxCommon('origin')}
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 10000000; keepalive_timeout 120s; ${nginxTemps('origin')}
  types { application/json json; }
  server { listen 127.0.0.1:${originPort} backlog=4096; root ${files}; location / { }
    location /cacheable/ { alias ${files}/; add_header Cache-Control "public, max-age=3600"; } } }`,
);
run('taskset', ['-c', LOAD_CORE, 'nginx', '-c', join(dir, 'origin.conf')], 'origin');
await waitFor(originPort);
const origin = `http://127.0.0.1:${originPort}`;

// ---------------------------------------------------------------- the proxies
interface Proxy {
  name: string;
  start(port: number): ChildProcess;
  /** Sent by wrk and by the size check as Accept-Encoding (the compression rows). */
  acceptEncoding?: string;
  /** The Content-Encoding this row must answer with (checked once before the rounds). */
  encoding?: string;
  /** Checked once after the warm-up; throws if the row would not measure what it says. */
  verify?(port: number): Promise<string>;
}

interface Table {
  /** Short, for the progress lines. */
  short: string;
  /** The heading in the report. */
  title: string;
  path: string;
  /** Bytes on the wire per response are measured and reported for this table. */
  sizes?: boolean;
  /**
   * wrk's per-request timeout (its default is 2s). The compression rows take some hundred
   * milliseconds per request under 64 connections: a longer wait keeps queueing from counting as errors.
   */
  timeout?: string;
}

interface Group {
  key: string;
  proxies: Proxy[];
  tables: Table[];
  /** The row the ratios are against (default `gatehouse`), and the ratio column's heading. */
  reference?: string;
  ratioHead?: string;
  /** Said under the group's tables in the report. */
  note?: string;
  /**
   * Run once after every row is up and checked, before the rounds: lines added under the group's
   * tables in the report (measurements that are not throughput).
   */
  extra?(ports: Map<string, number>): Promise<string[]>;
}

const node = process.execPath;
const ADMIN_TOKEN = 'bench-admin-token-0123456789';

interface GatehouseOptions {
  accessLog?: boolean;
  metrics?: boolean;
  /** A checkout of Gatehouse to run (BENCH_BASELINE). */
  root?: string;
  engine?: string;
  /** One middleware, as YAML, put on the route that matches. */
  middleware?: string;
  /** Several: the `middlewares:` map as YAML, and the names the matching route uses, in order. */
  middlewares?: { defs: string; use: string[] };
  /** Instead of the three proxy routes, one route `files` serving this directory (`static`). */
  staticRoot?: string;
  /** The admin listener's port, when `metrics` is on (default: any free port). */
  adminPort?: number;
}

/** Gatehouse with routing (three routes, the match is the last) and forwarding headers, as deployed. */
function startGatehouse(port: number, o: GatehouseOptions = {}): ChildProcess {
  const { accessLog = true, metrics = false, root = ROOT, engine = 'gatehouse', staticRoot } = o;
  const mw = o.middleware ? { defs: `{ m: ${o.middleware} }`, use: ['m'] } : o.middlewares;
  const cfg = join(dir, `gatehouse-${port}.yaml`);
  const routes = staticRoot
    ? `routes:
  - { name: files, match: { pathPrefix: / }, static: { root: "${staticRoot}" } }
`
    : `routes:
  - { name: admin, match: { hosts: [admin.example.com] }, upstream: origin }
  - { name: api, match: { pathPrefix: /api/ }, stripPrefix: true, upstream: origin }
  - { name: site, match: { pathPrefix: / }, upstream: origin${mw ? `, middlewares: [${mw.use.join(', ')}]` : ''} }
upstreams:
  origin: { targets: [{ url: "${origin}" }], timeouts: { keepAlive: 60s } }
`;
  writeFileSync(
    cfg,
    `listeners: [{ name: web, address: "127.0.0.1:${port}"${engine === 'gatehouse' ? '' : `, engine: ${engine}`} }]
accessLog: { enabled: ${accessLog}, path: ${dir}/gatehouse-access.log }
${metrics ? `admin: { address: "127.0.0.1:${o.adminPort ?? 0}", token: ${ADMIN_TOKEN} }` : ''}
limits: { keepAliveTimeout: 120s }
${mw ? `middlewares: ${mw.defs}` : ''}
${routes}`,
  );
  return run('taskset', ['-c', PROXY_CORE, node, join(root, 'src', 'cli.ts'), 'run', '-c', cfg], 'gatehouse');
}

/**
 * nginx proxying to the origin (`upstream` with keep-alive, forwarding headers, access log), with
 * directives added in the main context (load_module), in http and in the location.
 */
function startNginx(
  name: string,
  port: number,
  extra: { main?: string; http?: string; location?: string } = {},
) {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    `${extra.main ?? ''}
${nginxCommon(name)}
http { access_log ${dir}/${name}-access.log; keepalive_requests 10000000; keepalive_timeout 120s; ${nginxTemps(name)}
  ${extra.http ?? ''}
  upstream origin { server 127.0.0.1:${originPort}; keepalive 256; keepalive_requests 10000000; }
  server { listen 127.0.0.1:${port} backlog=4096;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Real-IP $remote_addr;
      ${extra.location ?? ''} } } }`,
  );
  return run('taskset', ['-c', PROXY_CORE, 'nginx', '-c', conf], name);
}

/** HAProxy in front of the origin, with lines added at the top level (a cache section) and in the backend. */
function startHaproxy(name: string, port: number, extra: { sections?: string; backend?: string } = {}) {
  const conf = join(dir, `${name}.cfg`);
  writeFileSync(
    conf,
    `global
  nbthread 1
  maxconn 8000
  log stdout format raw local0
${extra.sections ?? ''}
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
${extra.backend ?? ''}
  server s1 127.0.0.1:${originPort}
`,
  );
  return run('taskset', ['-c', PROXY_CORE, 'haproxy', '-f', conf], name);
}

/**
 * nginx serving the files directory itself: `root`, `sendfile on`, `tcp_nopush on`, an access log
 * to a file, `open_file_cache` left off (its default: every request opens, fstats and closes the file,
 * as Gatehouse does).
 */
function startNginxStatic(name: string, port: number) {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    `${nginxCommon(name)}
http { access_log ${dir}/${name}-access.log; sendfile on; tcp_nopush on; keepalive_requests 10000000; keepalive_timeout 120s; ${nginxTemps(name)}
  server { listen 127.0.0.1:${port} backlog=4096; root ${files}; location / { } } }`,
  );
  return run('taskset', ['-c', PROXY_CORE, 'nginx', '-c', conf], name);
}

/**
 * The minimal Node file server: node:http, one stat and fs.createReadStream piped to the response.
 * No validators, ranges, types or path checks beyond refusing `..`; no log. What serving a file
 * from Node costs at the least.
 */
const NODE_STATIC = `
import { createServer } from 'node:http';
import { createReadStream, stat } from 'node:fs';
import { join } from 'node:path';
const [port, root] = process.argv.slice(1);
createServer((req, res) => {
  const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
  if (path.includes('..')) return void res.writeHead(400).end();
  const file = join(root, path);
  stat(file, (err, st) => {
    if (err || !st.isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  });
}).listen(Number(port), '127.0.0.1');
`;

const CACHE_PATH = '/cacheable/100b';
const JSON_PATH = '/data.json';
const CACHE_JSON_PATH = '/cacheable/data.json';
const STATIC_PATHS = ['/100b', '/1m'];

/** Throws unless one request to the row's port shows a cache hit in `header`. */
const expectHit =
  (header: string, hit: RegExp) =>
  async (port: number): Promise<string> => {
    const r = await rawGet(port, CACHE_PATH);
    const value = r.headers[header];
    if (r.status !== 200 || !value || !hit.test(value))
      throw new Error(
        `bench: port ${port} does not answer ${CACHE_PATH} from its cache (status ${r.status}, ${header}: ${value ?? 'absent'}); its cache rows would measure the origin`,
      );
    return `${header}: ${value}`;
  };

/** Throws unless every static path comes back 200 with exactly the bytes of the file. */
async function expectFiles(port: number): Promise<string> {
  const seen: string[] = [];
  for (const path of STATIC_PATHS) {
    const r = await rawGet(port, path);
    const want = readFileSync(join(files, path.slice(1)));
    if (r.status !== 200 || !r.body.equals(want))
      throw new Error(
        `bench: port ${port} answers ${path} with status ${r.status} and ${r.body.length} body bytes (expected 200 and the file's ${want.length} bytes, byte for byte); its static rows would measure something else`,
      );
    seen.push(`${path} 200, ${r.body.length} bytes, byte-exact`);
  }
  return seen.join('; ');
}

/** Throws unless a gzip request for the cacheable JSON is a cache hit, gzipped, decoding to the JSON. */
async function expectGzipHit(port: number): Promise<string> {
  const r = await rawGet(port, CACHE_JSON_PATH, { 'Accept-Encoding': 'gzip' });
  const status = r.headers['cache-status'];
  const coding = r.headers['content-encoding'];
  if (r.status !== 200 || coding !== 'gzip' || !status || !/;\s*hit\b/.test(status))
    throw new Error(
      `bench: port ${port} answers ${CACHE_JSON_PATH} (Accept-Encoding: gzip) with status ${r.status}, Content-Encoding: ${coding ?? 'absent'}, Cache-Status: ${status ?? 'absent'} (expected 200, gzip, a hit); its cache-order row would measure something else`,
    );
  if (!gunzipSync(r.body).equals(Buffer.from(json)))
    throw new Error(
      `bench: port ${port}'s gzip body for ${CACHE_JSON_PATH} does not decode to the origin's JSON`,
    );
  return `gzip, ${r.body.length} bytes, Cache-Status: ${status}`;
}

/** The sum of a metric's series in a Prometheus text exposition. */
function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

async function scrape(adminPort: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      const text = await r.text();
      if (r.status === 200) return text;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`bench: no /metrics on admin port ${adminPort}`);
}

const CACHE_ORDER = {
  defs: '{ c: { cache: {} }, z: { compress: { encodings: [gzip], gzipLevel: 6 } } }',
  cacheOutside: ['c', 'z'],
  compressOutside: ['z', 'c'],
};
const ORDER_A = 'gatehouse, [cache, compress]';
const ORDER_B = 'gatehouse, [compress, cache]';

/**
 * What one cached object costs in each order: the body a hit sends (gzip from [cache, compress],
 * identity from [compress, cache], one request each to the measured rows), and the cache's own count
 * for one new entry (gatehouse_cache_bytes before and after one miss, on a separate Gatehouse with
 * the admin listener, started and stopped here so the measured rows carry no metrics).
 */
async function cacheOrderMemory(ports: Map<string, number>): Promise<string[]> {
  const bodies: Record<string, number> = {};
  const portA = ports.get(`cache-order|${ORDER_A}`);
  const portB = ports.get(`cache-order|${ORDER_B}`);
  if (portA !== undefined)
    bodies.A = (await rawGet(portA, CACHE_JSON_PATH, { 'Accept-Encoding': 'gzip' })).body.length;
  if (portB !== undefined) {
    const r = await rawGet(portB, CACHE_JSON_PATH);
    const status = r.headers['cache-status'] ?? '';
    if (
      r.status !== 200 ||
      r.headers['content-encoding'] ||
      !/;\s*hit\b/.test(status) ||
      !r.body.equals(Buffer.from(json))
    )
      throw new Error(
        `bench: ${ORDER_B} answers ${CACHE_JSON_PATH} without Accept-Encoding with status ${r.status}, Content-Encoding: ${r.headers['content-encoding'] ?? 'absent'}, Cache-Status: ${status || 'absent'}: not the stored identity answer`,
      );
    bodies.B = r.body.length;
  }
  const counted: Record<string, { bytes: number; objects: number }> = {};
  for (const [k, use] of [
    ['A', CACHE_ORDER.cacheOutside],
    ['B', CACHE_ORDER.compressOutside],
  ] as const) {
    if (bodies[k] === undefined) continue;
    const port = await freePort();
    const adminPort = await freePort();
    const child = startGatehouse(port, {
      accessLog: false,
      metrics: true,
      adminPort,
      middlewares: { defs: CACHE_ORDER.defs, use: [...use] },
    });
    try {
      await waitFor(port);
      const before = await scrape(adminPort);
      const r = await rawGet(port, CACHE_JSON_PATH, { 'Accept-Encoding': 'gzip' });
      if (r.status !== 200) throw new Error(`bench: the memory probe got ${r.status}`);
      await new Promise((res) => setTimeout(res, 300));
      const after = await scrape(adminPort);
      counted[k] = {
        bytes: metric(after, 'gatehouse_cache_bytes') - metric(before, 'gatehouse_cache_bytes'),
        objects: metric(after, 'gatehouse_cache_objects') - metric(before, 'gatehouse_cache_objects'),
      };
    } finally {
      child.kill('SIGTERM');
    }
  }
  const n = (x: number) => x.toLocaleString('en');
  const say = (k: 'A' | 'B', order: string, what: string) => {
    const c = counted[k];
    const cache = c
      ? `; the cache counts ${n(c.bytes)} bytes for ${c.objects === 1 ? 'the entry' : `${c.objects} entries`} (body, head, key and its 640 bytes of objects)`
      : '';
    return `- ${order} stores ${what}: ${n(bodies[k])} body bytes per cached object${cache}.`;
  };
  const lines = ['Memory per cached object (one request each, before the rounds):', ''];
  if (bodies.A !== undefined) lines.push(say('A', '`[cache, compress]`', 'the gzip variant'));
  if (bodies.B !== undefined) lines.push(say('B', '`[compress, cache]`', 'the identity answer'));
  if (bodies.A !== undefined && bodies.B !== undefined) {
    const ratio =
      counted.A && counted.B
        ? ` (${(counted.B.bytes / counted.A.bytes).toFixed(2)}× by the cache's count)`
        : '';
    lines.push(
      `- identity ÷ gzip: ${(bodies.B / bodies.A).toFixed(2)}× per object in body bytes${ratio}. \`[cache, compress]\` keeps one such variant per distinct \`Accept-Encoding\` set in use; \`[compress, cache]\` one entry for all.`,
    );
  }
  lines.push('');
  return lines;
}

/**
 * BENCH_BASELINE=DIR: also run the Gatehouse checked out in DIR (an earlier commit, e.g. made with
 * `git worktree add DIR <commit>`), same config, in the same interleaved rounds: before and after.
 */
const BASELINE = process.env.BENCH_BASELINE;
const BROTLI_MODULE = '/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so';
const hasBrotli = existsSync(BROTLI_MODULE);
const nginxGzip =
  'gzip on; gzip_comp_level 6; gzip_types application/json; gzip_min_length 1k; gzip_vary on;';
const jsonSize = Buffer.byteLength(json).toLocaleString('en');

const allGroups: Group[] = [
  {
    key: 'plain',
    tables: [
      { short: '100 B', title: '100 B response', path: '/100b' },
      { short: '1 MiB', title: '1 MiB response', path: '/1m' },
    ],
    proxies: [
      { name: 'gatehouse', start: (port) => startGatehouse(port) },
      ...(BASELINE
        ? [
            {
              name: 'gatehouse (baseline)',
              start: (port: number) => startGatehouse(port, { root: BASELINE }),
            },
          ]
        : []),
      { name: 'gatehouse, engine: node', start: (port) => startGatehouse(port, { engine: 'node' }) },
      { name: 'gatehouse, access log off', start: (port) => startGatehouse(port, { accessLog: false }) },
      { name: 'gatehouse, metrics on', start: (port) => startGatehouse(port, { metrics: true }) },
      {
        name: 'gatehouse, metrics on, log off',
        start: (port) => startGatehouse(port, { accessLog: false, metrics: true }),
      },
      { name: 'nginx', start: (port) => startNginx('proxy', port) },
      { name: 'haproxy', start: (port) => startHaproxy('haproxy', port) },
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
    ],
  },
  {
    key: 'cache',
    tables: [
      {
        short: 'cache',
        title:
          'Cache hit, 100 B response (origin sends `Cache-Control: public, max-age=3600`; every measured request is a hit)',
        path: CACHE_PATH,
      },
    ],
    proxies: [
      {
        name: 'gatehouse',
        start: (port) => startGatehouse(port, { middleware: '{ cache: {} }' }),
        verify: expectHit('cache-status', /;\s*hit\b/),
      },
      {
        name: 'nginx',
        start: (port) =>
          startNginx('proxy-cache', port, {
            http: `proxy_cache_path ${dir}/nginx-cache levels=1:2 keys_zone=bench:10m max_size=256m inactive=1h use_temp_path=off;`,
            location:
              'proxy_cache bench; proxy_cache_valid 200 1h; proxy_cache_lock on; add_header X-Cache-Status $upstream_cache_status;',
          }),
        verify: expectHit('x-cache-status', /^HIT$/),
      },
      {
        name: 'haproxy',
        start: (port) =>
          startHaproxy('haproxy-cache', port, {
            sections: 'cache bench\n  total-max-size 256\n  max-age 3600',
            backend:
              '  http-request cache-use bench\n  http-response cache-store bench\n  http-response set-header X-Cache-Status HIT if { res.cache_hit }',
          }),
        verify: expectHit('x-cache-status', /^HIT$/),
      },
    ],
  },
  {
    key: 'compress-gzip',
    tables: [
      {
        short: 'gzip',
        title: `gzip, 100 KiB JSON (${jsonSize} bytes, \`Accept-Encoding: gzip\`; level 6 on Gatehouse and nginx)`,
        path: JSON_PATH,
        sizes: true,
        timeout: '10s',
      },
    ],
    proxies: [
      {
        name: 'gatehouse',
        start: (port) =>
          startGatehouse(port, { middleware: '{ compress: { encodings: [gzip], gzipLevel: 6 } }' }),
        acceptEncoding: 'gzip',
        encoding: 'gzip',
      },
      {
        name: 'nginx',
        start: (port) => startNginx('proxy-gzip', port, { http: nginxGzip }),
        acceptEncoding: 'gzip',
        encoding: 'gzip',
      },
      {
        // Debian's HAProxy compresses with libslz: fast, at about zlib's level 1 ratio, no level to set.
        name: 'haproxy (libslz)',
        start: (port) =>
          startHaproxy('haproxy-gzip', port, {
            backend: '  compression algo gzip\n  compression type application/json',
          }),
        acceptEncoding: 'gzip',
        encoding: 'gzip',
      },
    ],
  },
  {
    key: 'compress-br',
    tables: [
      {
        short: 'br',
        title: hasBrotli
          ? `brotli, 100 KiB JSON (${jsonSize} bytes, \`Accept-Encoding: br\`; quality 4 on Gatehouse and nginx's brotli module)`
          : `brotli, 100 KiB JSON (${jsonSize} bytes, \`Accept-Encoding: br\`, quality 4; nginx has no brotli module here: its row is gzip level 6)`,
        path: JSON_PATH,
        sizes: true,
        timeout: '10s',
      },
    ],
    proxies: [
      {
        name: 'gatehouse',
        start: (port) =>
          startGatehouse(port, { middleware: '{ compress: { encodings: [br], brotliQuality: 4 } }' }),
        acceptEncoding: 'br',
        encoding: 'br',
      },
      hasBrotli
        ? {
            name: 'nginx',
            start: (port) =>
              startNginx('proxy-br', port, {
                main: `load_module ${BROTLI_MODULE};`,
                http: 'brotli on; brotli_comp_level 4; brotli_types application/json; brotli_min_length 1024;',
              }),
            acceptEncoding: 'br',
            encoding: 'br',
          }
        : {
            name: 'nginx (gzip 6, no brotli module)',
            start: (port) => startNginx('proxy-br', port, { http: nginxGzip }),
            acceptEncoding: 'gzip',
            encoding: 'gzip',
          },
    ],
  },
  {
    key: 'static',
    tables: [
      {
        short: 'file 100 B',
        title: 'Static file, 100 B (served from disk by each server; no upstream)',
        path: '/100b',
      },
      {
        short: 'file 1 MiB',
        title: 'Static file, 1 MiB (served from disk by each server; no upstream)',
        path: '/1m',
      },
    ],
    proxies: [
      {
        name: 'gatehouse',
        start: (port) => startGatehouse(port, { staticRoot: files }),
        verify: expectFiles,
      },
      { name: 'nginx', start: (port) => startNginxStatic('static', port), verify: expectFiles },
      {
        name: 'node:http + createReadStream (minimal)',
        start: (port) =>
          run(
            'taskset',
            ['-c', PROXY_CORE, node, '--input-type=module', '-e', NODE_STATIC, String(port), files],
            'node-static',
          ),
        verify: expectFiles,
      },
    ],
  },
  {
    key: 'cache-order',
    tables: [
      {
        short: 'order',
        title: `Cache and compress on one route, both orders: cache hits of 100 KiB JSON (${jsonSize} bytes, \`Accept-Encoding: gzip\`, level 6)`,
        path: CACHE_JSON_PATH,
        sizes: true,
        timeout: '10s',
      },
    ],
    reference: ORDER_A,
    ratioHead: '[cache, compress] ÷ this',
    note: '`[cache, compress]`: the cache is outside and stores the gzip variant, a hit sends stored bytes. `[compress, cache]`: the cache stores the identity answer, every hit is gzipped again.',
    extra: cacheOrderMemory,
    proxies: [
      {
        name: ORDER_A,
        start: (port) =>
          startGatehouse(port, { middlewares: { defs: CACHE_ORDER.defs, use: CACHE_ORDER.cacheOutside } }),
        acceptEncoding: 'gzip',
        encoding: 'gzip',
        verify: expectGzipHit,
      },
      {
        name: ORDER_B,
        start: (port) =>
          startGatehouse(port, { middlewares: { defs: CACHE_ORDER.defs, use: CACHE_ORDER.compressOutside } }),
        acceptEncoding: 'gzip',
        encoding: 'gzip',
        verify: expectGzipHit,
      },
    ],
  },
  {
    key: 'waf',
    tables: [
      {
        short: 'waf 100 B',
        title:
          'The same route with and without the WAF: 100 B answers to a GET with a query (`?q=blue+shoes&page=2&sort=price`)',
        path: '/100b?q=blue+shoes&page=2&sort=price',
      },
    ],
    note: 'The cost of inspection per request: the path, the query, the headers and cookies of each request are decoded and scanned (no body on these GETs). Ratios are the route without the WAF over each row.',
    proxies: [
      { name: 'gatehouse', start: (port) => startGatehouse(port) },
      {
        name: 'gatehouse + waf, paranoia 1',
        start: (port) => startGatehouse(port, { middleware: '{ waf: { mode: block, paranoia: 1 } }' }),
      },
      {
        name: 'gatehouse + waf, paranoia 3',
        start: (port) => startGatehouse(port, { middleware: '{ waf: { mode: block, paranoia: 3 } }' }),
      },
    ],
  },
];
const groups = allGroups
  .filter((g) => groupSelected(g.key))
  .map((g) => ({ ...g, proxies: g.proxies.filter((p) => rowSelected(p.name)) }))
  .filter((g) => g.proxies.length > 0);
if (groups.length === 0) throw new Error(`bench: BENCH_ONLY=${process.env.BENCH_ONLY} selects no row`);

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

function wrk(port: number, path: string, seconds: number, acceptEncoding?: string, timeout?: string): Sample {
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
      ...(acceptEncoding ? ['-H', `Accept-Encoding: ${acceptEncoding}`] : []),
      ...(timeout ? ['--timeout', timeout] : []),
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

/** One compressed response: its body decodes to the JSON the origin serves, in the expected coding. */
async function measureSize(p: Proxy, port: number, path: string): Promise<{ body: number; wire: number }> {
  const r = await rawGet(port, path, p.acceptEncoding ? { 'Accept-Encoding': p.acceptEncoding } : {});
  const coding = r.headers['content-encoding'];
  if (r.status !== 200 || coding !== p.encoding)
    throw new Error(
      `bench: ${p.name} on port ${port} answers ${path} with status ${r.status}, Content-Encoding: ${coding ?? 'absent'} (expected ${p.encoding}); its compression row would measure something else`,
    );
  const decoded = coding === 'br' ? brotliDecompressSync(r.body) : gunzipSync(r.body);
  if (!decoded.equals(Buffer.from(json)))
    throw new Error(`bench: ${p.name}'s ${coding} body does not decode to the origin's JSON`);
  return { body: r.body.length, wire: r.wire };
}

const results = new Map<string, Sample[]>(); // key: group|table|proxy
const ports = new Map<string, number>(); // key: group|proxy
const sizes = new Map<string, { body: number; wire: number }>(); // key: group|table|proxy
const rowKey = (g: Group, t: Table, p: Proxy) => `${g.key}|${t.short}|${p.name}`;

for (const g of groups) {
  for (const p of g.proxies) {
    const port = await freePort();
    ports.set(`${g.key}|${p.name}`, port);
    p.start(port);
    await waitFor(port, g.tables[0].path);
    // warm-up: JIT, pools, and the caches filled
    for (const [i, t] of g.tables.entries()) wrk(port, t.path, i === 0 ? 2 : 1, p.acceptEncoding, t.timeout);
    if (p.verify) process.stderr.write(`  ${g.key} ${p.name}: ${await p.verify(port)}\n`);
    for (const t of g.tables) {
      if (!t.sizes) continue;
      const s = await measureSize(p, port, t.path);
      sizes.set(rowKey(g, t, p), s);
      process.stderr.write(
        `  ${t.short} ${p.name}: ${s.body} bytes of ${p.encoding} body, ${s.wire} on the wire (of ${json.length})\n`,
      );
    }
  }
}

const extras = new Map<string, string[]>(); // key: group
for (const g of groups) if (g.extra) extras.set(g.key, await g.extra(ports));

const rows = groups.reduce((n, g) => n + g.proxies.length * g.tables.length, 0);
process.stderr.write(
  `bench: ${rows} rows (${groups.map((g) => g.key).join(', ')}), ${ROUNDS} rounds x ${SECONDS}s, ${CONNECTIONS} connections\n`,
);
for (let round = 1; round <= ROUNDS; round++) {
  for (const g of groups) {
    for (const t of g.tables) {
      for (const p of g.proxies) {
        const s = wrk(
          ports.get(`${g.key}|${p.name}`) as number,
          t.path,
          SECONDS,
          p.acceptEncoding,
          t.timeout,
        );
        const key = rowKey(g, t, p);
        results.set(key, [...(results.get(key) ?? []), s]);
        process.stderr.write(
          `  round ${round} ${t.short.padEnd(6)} ${p.name.padEnd(40)} ${s.rps.toFixed(0).padStart(7)} req/s  p99 ${s.p99.toFixed(2)} ms${s.errors ? `  ERRORS ${s.errors}` : ''}\n`,
        );
      }
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
  `${ROUNDS} interleaved rounds of ${SECONDS}s, medians. Ratios are Gatehouse's requests/s over the peer's (the row "gatehouse" of the same table${groups.some((g) => g.reference) ? '; in the cache-order table, the row `[cache, compress]` over the other' : ''}).`,
);
lines.push('');
for (const g of groups) {
  for (const t of g.tables) {
    lines.push(`**${t.title}**`, '');
    const sizeHead = t.sizes ? ' body bytes | bytes on the wire |' : '';
    lines.push(
      `| proxy | req/s | p50 ms | p99 ms | errors | ${g.ratioHead ?? 'Gatehouse ÷ this'} | per round |${sizeHead}`,
    );
    lines.push(`|---|---:|---:|---:|---:|---:|---:|${t.sizes ? '---:|---:|' : ''}`);
    const gatehouse = g.proxies.find((p) => p.name === (g.reference ?? 'gatehouse'));
    const ghRounds = gatehouse ? (results.get(rowKey(g, t, gatehouse)) ?? []).map((s) => s.rps) : [];
    const gh = median(ghRounds);
    for (const p of g.proxies) {
      const xs = results.get(rowKey(g, t, p)) ?? [];
      const rps = median(xs.map((s) => s.rps));
      const paired = xs.map((s, i) => ghRounds[i] / s.rps);
      const compared = gatehouse && p !== gatehouse;
      const ratio = compared ? (gh / rps).toFixed(2) : '—';
      const range = compared ? `${Math.min(...paired).toFixed(2)}–${Math.max(...paired).toFixed(2)}` : '—';
      const size = sizes.get(rowKey(g, t, p));
      const sizeCells = t.sizes ? ` ${size?.body ?? '—'} | ${size?.wire ?? '—'} |` : '';
      lines.push(
        `| ${p.name} | ${rps.toFixed(0)} | ${median(xs.map((s) => s.p50)).toFixed(2)} | ${median(xs.map((s) => s.p99)).toFixed(2)} | ${xs.reduce((a, s) => a + s.errors, 0)} | ${ratio} | ${range} |${sizeCells}`,
      );
    }
    lines.push('');
  }
  if (g.note) lines.push(g.note, '');
  lines.push(...(extras.get(g.key) ?? []));
}
const report = lines.join('\n');
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'latest.md'), `${report}\n`);
process.stdout.write(`${report}\n`);
process.exit(0);
