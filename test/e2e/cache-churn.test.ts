// The cache's byte bound under churn (the evidence): Gatehouse runs as a child process so
// its resident memory is its own, with a 32 MiB memory cache in front of an origin that answers
// 100,000 distinct URLs (max-age=600, bodies of 1 to 5 KiB). A keep-alive pool of 32 connections
// requests each URL once (and every 10th step an URL from 100 steps back again, a hit), while the
// admin API's GET /api/v1/cache and the child's /proc status are sampled. Asserted: every body is
// the origin's, the cache's bytes never exceed maxSize in any sample, entries were evicted, and RSS
// after the churn minus RSS before stays below maxSize plus a stated overhead. Then the most
// recently used entries are hits and the oldest are gone: eviction is least recently used first.
//
// RSS is read from /proc/<pid>/status (VmRSS; VmHWM for the peak). Also asserted: RSS does not
// grow over the second half of the keys, once the cache is full (a leak per key would show there).
// The figures are printed (console.log) for quoting. About 45 s on 2 shared cores.
//
// A second, small test: the bound also holds when revalidations (304s) grow the stored heads.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { Agent, Pool, request } from 'undici';
import { start, until } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';
import { configFile, listenerUrl, spawnGatehouse } from '../helpers/process.ts';

const MiB = 1024 * 1024;
const MAX_SIZE = 32 * MiB;
/**
 * What RSS may grow by beyond maxSize, from after the warm-up to after the churn. Measured (2 shared
 * cores): maxSize + 139 MiB on the gatehouse engine, maxSize + 118 MiB on node's. Of that, about
 * 100 MiB is the proxy's own growth under this load with no cache at all (measured with the route
 * without the middleware: RSS 149 -> 251 MiB, heap used unchanged; V8's heap sized up for the
 * allocation rate, socket and allocator arenas); the rest is the index of ~8,700 entries and
 * garbage not yet collected. The bound leaves about 50 MiB of headroom.
 */
const OVERHEAD = 192 * MiB;
/** What the second 50,000 keys may add, with the cache full since the first few thousand. Measured: -1 to +10 MiB. */
const SECOND_HALF = 32 * MiB;
const KEYS = 100_000;
const CONCURRENCY = 32;
/** Requests that are not stored, before the first RSS reading (JIT, connections, buffers). */
const WARM = 3000;
const TOKEN = 'churn-test-token-0123456789';

/** A fixed pseudo-random pattern the bodies are cut from, at an offset that depends on the key. */
const PATTERN = (() => {
  const b = Buffer.alloc(16 * 1024);
  let x = 0x2545f491;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = 33 + ((x >>> 0) % 94);
  }
  return b;
})();

/** Key i's body: 1 KiB to 5 KiB, starting with the key so a body served for the wrong URL shows. */
function bodyOf(i: number): Buffer {
  const size = 1024 + (((i * 2654435761) >>> 0) % 4096);
  const head = Buffer.from(`k${i}|`);
  const off = (i * 131) % (PATTERN.length - 5 * 1024);
  return Buffer.concat([head, PATTERN.subarray(off, off + size - head.length)]);
}

function rssOf(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

test('100,000-key churn: the cache stays within maxSize, RSS within maxSize + overhead, LRU keeps the recent', async () => {
  const started = Date.now();
  const fetched = new Map<number, number>();
  const up = await origin((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (url.startsWith('/warm/')) {
      const body = bodyOf(Number(url.slice(6)));
      res.writeHead(200, { 'cache-control': 'no-store', 'content-length': String(body.length) });
      res.end(body);
      return;
    }
    const i = Number(url.slice(3));
    fetched.set(i, (fetched.get(i) ?? 0) + 1);
    const body = bodyOf(i);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'cache-control': 'max-age=600',
      'content-length': String(body.length),
    });
    res.end(body);
  });
  up.seen.length = 0;
  // The origin's own record of every request would grow to 100k entries in this process: off.
  up.server.prependListener('request', () => {
    up.seen.length = 0;
  });
  const engine = process.env.GATEHOUSE_TEST_ENGINE === 'node' ? ', engine: node' : '';
  const p = spawnGatehouse([
    'run',
    '-c',
    await configFile(`
admin: { address: "127.0.0.1:0", token: "${TOKEN}" }
accessLog: { enabled: false }
listeners: [{ name: web, address: "127.0.0.1:0"${engine} }]
middlewares:
  c: { cache: { store: memory, maxSize: 32mb, maxObjectSize: 1mb } }
routes: [{ name: all, middlewares: [c], upstream: u }]
upstreams:
  u: { targets: [{ url: "${up.url}" }] }
`),
  ]);
  let pool: Pool | undefined;
  const adminAgent = new Agent({ connections: 1 });
  try {
    const web = new Pool(await listenerUrl(p), { connections: CONCURRENCY, pipelining: 1 });
    pool = web;
    await until(() => /admin: http:\/\/\S+ /.test(p.stderr), 10_000, 'the admin line');
    const admin = (/admin: (http:\/\/\S+) /.exec(p.stderr) as RegExpExecArray)[1];
    const pid = p.child.pid as number;
    const figures = async () => {
      const r = await request(`${admin}/api/v1/cache`, {
        dispatcher: adminAgent,
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(r.statusCode, 200);
      const list = (await r.body.json()) as Record<string, number | string>[];
      assert.equal(list.length, 1);
      return list[0] as { bytes: number; objects: number; evictions: number; stored: number; hits: number };
    };
    const get = async (path: string) => {
      const r = await web.request({ method: 'GET', path });
      const body = Buffer.from(await r.body.arrayBuffer());
      return { status: r.statusCode, cacheStatus: String(r.headers['cache-status']), body };
    };
    // The same work for n keys at `concurrency` at a time.
    const run = async (n: number, each: (k: number) => Promise<void>) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < n) await each(next++);
        }),
      );
    };

    // Warm up (JIT, connections, pools) with answers that are not stored, then measure.
    await run(WARM, async (k) => {
      const r = await get(`/warm/${k}`);
      assert.equal(r.status, 200);
    });
    const before = rssOf(pid);
    const f0 = await figures();
    assert.equal(f0.objects, 0);
    assert.equal(f0.bytes, 0);

    // The churn, sampled.
    const samples: { bytes: number; objects: number; rss: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const f = await figures();
        samples.push({ bytes: f.bytes, objects: f.objects, rss: rssOf(pid).rss });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const churnStart = Date.now();
    let wrong = 0;
    let repeats = 0;
    let repeatHits = 0;
    const statuses = new Map<string, number>();
    // Step s requests key s; every 10th step also key s - 100 (recently used: a hit). In two
    // halves, with RSS read between them: once the cache is full, more keys must not add memory.
    const step = async (s: number) => {
      const keys = s % 10 === 0 && s >= 100 ? [s, s - 100] : [s];
      for (const k of keys) {
        const r = await get(`/k/${k}`);
        if (r.status !== 200 || !r.body.equals(bodyOf(k))) wrong++;
        if (k !== s) {
          repeats++;
          if (/; hit/.test(r.cacheStatus)) repeatHits++;
        } else {
          const kind = r.cacheStatus.replace(/^gatehouse; /, '').replace(/; ttl=\d+/, '');
          statuses.set(kind, (statuses.get(kind) ?? 0) + 1);
        }
      }
    };
    await run(KEYS / 2, step);
    const mid = rssOf(pid);
    await run(KEYS / 2, (s) => step(KEYS / 2 + s));
    const churnMs = Date.now() - churnStart;
    sampling = false;
    await sampler;
    const after = rssOf(pid);
    const f1 = await figures();

    const maxBytes = Math.max(...samples.map((s) => s.bytes), f1.bytes);
    const maxObjects = Math.max(...samples.map((s) => s.objects), f1.objects);
    const growth = after.rss - before.rss;
    const secondHalf = after.rss - mid.rss;
    console.log(
      [
        `cache-churn (${process.env.GATEHOUSE_TEST_ENGINE ?? 'gatehouse'} engine): ${KEYS} keys + ${repeats} repeats in ${(churnMs / 1000).toFixed(1)} s`,
        `  maxSize ${mib(MAX_SIZE)}; cache bytes at most ${maxBytes} (${mib(maxBytes)}) over ${samples.length} samples; at the end ${f1.bytes} bytes, ${f1.objects} objects (at most ${maxObjects}), ${f1.evictions} evictions, ${f1.stored} stored`,
        `  RSS before ${mib(before.rss)}, after ${KEYS / 2} keys ${mib(mid.rss)}, after ${mib(after.rss)} (growth ${mib(growth)}; over the second half ${mib(secondHalf)}), peak ${mib(after.hwm)}`,
        `  bounds asserted: growth < maxSize + ${mib(OVERHEAD)} = ${mib(MAX_SIZE + OVERHEAD)}; second half < ${mib(SECOND_HALF)}`,
        `  answers to first requests: ${JSON.stringify(Object.fromEntries(statuses))}; repeats that hit: ${repeatHits}/${repeats}`,
      ].join('\n'),
    );

    assert.equal(wrong, 0, 'every body is the origin’s body for that URL');
    assert.ok(samples.length >= 10, `sampled during the run (${samples.length})`);
    for (const s of samples) assert.ok(s.bytes <= MAX_SIZE, `bytes ${s.bytes} within maxSize ${MAX_SIZE}`);
    assert.ok(f1.bytes <= MAX_SIZE);
    assert.ok(f1.bytes > MAX_SIZE * 0.9, `the cache is full after the churn (${f1.bytes})`);
    // Each entry costs at least its body (>= 1 KiB) plus 640 bytes, at most ~5.8 KiB.
    assert.ok(f1.objects > MAX_SIZE / 6000 && f1.objects < MAX_SIZE / 1600, `objects ${f1.objects}`);
    assert.ok(f1.evictions > 0, 'entries were evicted');
    assert.equal(f1.stored, KEYS, 'every URL stored once');
    assert.equal(f1.stored, f1.objects + f1.evictions, 'everything stored is held or was evicted');
    assert.equal(statuses.get('fwd=miss; stored'), KEYS, 'every first request a miss, stored');
    assert.equal(repeatHits, repeats, 'a URL used 100 steps ago is still held');
    assert.equal(fetched.size, KEYS);
    assert.ok(
      [...fetched.values()].every((n) => n === 1),
      'the origin was asked once per URL',
    );
    assert.ok(
      growth < MAX_SIZE + OVERHEAD,
      `RSS grew by ${mib(growth)}, more than maxSize + ${mib(OVERHEAD)}`,
    );
    assert.ok(
      secondHalf < SECOND_HALF,
      `RSS grew by ${mib(secondHalf)} over the second ${KEYS / 2} keys, with the cache already full`,
    );

    // Phase 2: the most recent 1,000 URLs are hits; the oldest 100 were evicted.
    let hits = 0;
    await run(1000, async (j) => {
      const k = KEYS - 1000 + j;
      const r = await get(`/k/${k}`);
      assert.ok(r.body.equals(bodyOf(k)), `body of ${k}`);
      if (/^gatehouse; hit/.test(r.cacheStatus)) hits++;
    });
    assert.equal(hits, 1000, 'the most recently used are all held');
    for (let k = 0; k < 100; k++) {
      const r = await get(`/k/${k}`);
      assert.ok(r.body.equals(bodyOf(k)), `body of ${k}`);
      assert.match(
        r.cacheStatus,
        /^gatehouse; fwd=miss; stored/,
        `key ${k}, least recently used, was evicted`,
      );
    }
    assert.equal(fetched.get(KEYS - 1), 1, 'the recent ones were not fetched again');
    assert.equal(fetched.get(0), 2, 'the oldest was fetched again');
    const f2 = await figures();
    assert.ok(f2.bytes <= MAX_SIZE);
    console.log(
      `  phase 2: 1000/1000 recent hits, 100/100 oldest evicted; total elapsed ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } finally {
    await pool?.close();
    await adminAgent.close();
    if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await p.exited;
    await up.close();
  }
});

test('the bound holds when revalidations grow the stored heads (a 304 with new fields)', async () => {
  // Seven entries of 8,000 bytes fill most of 64 KiB; each is stale at once, and the origin's 304
  // adds a 12,000-byte field, which the refreshed head keeps (§4.3.4). Those bytes count too.
  const up = await origin((req, res) => {
    if (req.headers['if-none-match'] === '"v"') {
      res.writeHead(304, { 'cache-control': 'max-age=0', etag: '"v"', 'x-grown': 'x'.repeat(12_000) });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"v"', 'content-length': '8000' });
    res.end('y'.repeat(8000));
  });
  const gh = await start(`
admin: { address: "127.0.0.1:0", token: "${TOKEN}" }
listeners: [{ name: web, address: "127.0.0.1:0" }]
middlewares: { c: { cache: { maxSize: 64kb, maxObjectSize: 16kb } } }
routes: [{ name: all, middlewares: [c], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`);
  try {
    const figures = async () => {
      const r = await send(`${(gh.gh.admin as { url: string }).url}/api/v1/cache`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      return JSON.parse(r.body)[0] as { bytes: number; objects: number; maxSize: number };
    };
    for (let i = 0; i < 7; i++) await send(`${gh.url()}/e${i}`);
    const filled = await figures();
    assert.equal(filled.objects, 7);
    assert.ok(filled.bytes <= filled.maxSize);
    for (let i = 0; i < 7; i++) {
      const r = await send(`${gh.url()}/e${i}`);
      assert.equal(r.body, 'y'.repeat(8000));
      // Refreshed in place (304), or — once growing heads have pushed it out — fetched anew.
      assert.match(String(r.headers['cache-status']), /fwd-status=304|fwd=miss; stored/);
      const f = await figures();
      assert.ok(
        f.bytes <= f.maxSize,
        `after ${i + 1} revalidations: ${f.bytes} bytes held, maxSize ${f.maxSize}`,
      );
    }
  } finally {
    await gh.close();
    await up.close();
  }
});
