// rateLimit store: redis against a real redis-server (Debian `redis-server`, started by the test on
// a free port): one bucket per key for every process, the same 429 as the memory store, on every
// transport; two Gatehouse processes share the limit exactly; Redis killed or hung mid-run is
// answered by onStoreError (allow / deny / local) within the timeout, the circuit opens and closes
// again when Redis is back; keys expire when the bucket is full again. `--workers 2` is in
// test/workers-ratelimit.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type TestContext, test } from 'node:test';
import { validateText } from '../../src/config/validate.ts';
import { redisStats } from '../../src/state/redis.ts';
import { ALL, type Answer, ask, type Listeners, type Transport, WS_KEY } from '../helpers/attack.ts';
import { makeCA, makeCert, tempDir } from '../helpers/certs.ts';
import { type Running, start, testConfig } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { type Origin, origin } from '../helpers/origin.ts';
import { configFile, listenerUrl, spawnGatehouse } from '../helpers/process.ts';
import { type RedisServer, redisServer } from '../helpers/redis.ts';
import { needCommand } from '../helpers/require.ts';

/** An echo origin that also accepts WebSocket upgrades (101, then closes). */
async function wsOrigin(): Promise<Origin> {
  const o = await origin();
  o.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    o.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    });
    const accept = createHash('sha1')
      .update(`${WS_KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.end(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
  });
  return o;
}

/** Every key Redis holds under `pattern`. */
async function keys(r: RedisServer, pattern = '*'): Promise<string[]> {
  return ((await r.command('KEYS', pattern)) as string[]).sort();
}

/** Collects the `[gatehouse] ` lines this process writes to stderr while `fn` runs. */
function stderrLines(): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    lines.push(String(chunk));
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
  return {
    lines,
    stop() {
      process.stderr.write = write;
    },
  };
}

test('one Gatehouse: N allowed, then 429 with Retry-After and RateLimit-* as the memory store sends them, on every transport', async (t) => {
  const redis = await redisServer(t);
  if (!redis || !needCommand(t, 'openssl', 'the TLS transports need certificates')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const server = makeCert(dir, ca, 'gh.test', ['gh.test']);
  const up = await wsOrigin();
  // A bucket per transport (keyed by a header), 3 requests, then one token every 20 minutes.
  const gh = await start(`
listeners:
  - { name: plain, address: "127.0.0.1:0" }
  - { name: h2c, address: "127.0.0.1:0", h2c: true }
  - name: tls
    address: "127.0.0.1:0"
    tls: { certificates: [{ certFile: ${server.certFile}, keyFile: ${server.keyFile} }] }
redis: { url: "${redis.url}", timeout: 2s, keyPrefix: "t1:" }
middlewares:
  shared: { rateLimit: { rate: 3, per: 1h, key: "header:x-t", store: redis, onStoreError: deny } }
  mem: { rateLimit: { rate: 3, per: 1h, key: "header:x-t" } }
routes:
  - { name: shared, match: { pathPrefix: /shared }, middlewares: [shared], upstream: u }
  - { name: mem, match: { pathPrefix: /mem }, middlewares: [mem], upstream: u }
upstreams:
  u: { targets: [{ url: "${up.url}" }] }
`);
  const L: Listeners = {
    plain: gh.url('plain'),
    h2c: gh.url('h2c'),
    tls: gh.url('tls'),
    ca: ca.cert,
    servername: 'gh.test',
  };
  const allowed = (tr: Transport) => (tr === 'ws' || tr === 'wss' ? 101 : 200);
  try {
    for (const tr of ALL) {
      const run = async (path: string) => {
        const out: Answer[] = [];
        for (let i = 0; i < 4; i++) out.push(await ask(L, tr, { target: path, headers: [['x-t', tr]] }));
        return out;
      };
      const shared = await run('/shared');
      const mem = await run('/mem');
      assert.deepEqual(
        shared.map((a) => a.status),
        [allowed(tr), allowed(tr), allowed(tr), 429],
        `${tr}: three pass, the fourth is refused`,
      );
      assert.deepEqual(
        mem.map((a) => a.status),
        shared.map((a) => a.status),
      );
      const [s, m] = [shared[3].headers, mem[3].headers];
      // 20 minutes until the next token, whichever store counted.
      for (const h of [s, m]) {
        assert.ok(Number(h['retry-after']) >= 1199 && Number(h['retry-after']) <= 1200, h['retry-after']);
        assert.equal(h['ratelimit-limit'], '3');
        assert.equal(h['ratelimit-remaining'], '0');
        assert.equal(h['ratelimit-reset'], h['retry-after']);
      }
    }
    assert.deepEqual(
      await keys(redis),
      ALL.map((tr) => `t1:rl:shared:${tr}`).sort(),
      'one key per bucket: <prefix>rl:<middleware>:<key>',
    );
    // The key lives until the bucket would be full again: 3 tokens at 20 minutes each.
    const pttl = Number(await redis.command('PTTL', 't1:rl:shared:h1'));
    assert.ok(pttl > 55 * 60_000 && pttl <= 60 * 60_000, `PTTL ${pttl}`);
    assert.equal(gh.log.entries().filter((e) => e.reason === 'rate_limited').length, 2 * ALL.length);
    assert.equal(redisStats().length, 1);
    assert.equal(redisStats()[0].circuit, 'closed');
  } finally {
    await gh.close();
    await up.close();
  }
  assert.equal(redisStats().length, 0, 'the last Plan closing closes the client');
});

test('keys as an attacker sends them: long or odd header values cannot make huge keys or share a bucket', async (t) => {
  const redis = await redisServer(t);
  if (!redis) return;
  const up = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
redis: { url: "${redis.url}", timeout: 2s }
middlewares:
  byKey: { rateLimit: { rate: 1, per: 1h, key: "header:x-api-key", store: redis, onStoreError: deny } }
routes: [{ name: r, middlewares: [byKey], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`);
  try {
    const long = 'k'.repeat(6000);
    const hashed = `#${createHash('sha256').update(long).digest('base64url')}`;
    const get = (key?: string) => send(gh.url(), { headers: key === undefined ? {} : { 'x-api-key': key } });
    assert.equal((await get(long)).status, 200);
    assert.equal((await get(long)).status, 429);
    // Someone who sends the hashed form literally gets a bucket of their own, not the long key's.
    assert.equal((await get(hashed)).status, 200);
    assert.equal((await get('a b*?[x]')).status, 200);
    assert.equal((await get('a b*?[x]')).status, 429);
    assert.equal((await get()).status, 200, 'no header: one shared bucket for requests without it');
    assert.equal((await get('')).status, 429, 'an empty value is the same bucket as none');
    const all = await keys(redis);
    assert.equal(all.length, 4);
    assert.ok(all.includes(`gatehouse:rl:byKey:${hashed}`));
    assert.ok(all.includes('gatehouse:rl:byKey:a b*?[x]'));
    assert.ok(all.includes('gatehouse:rl:byKey:'));
    assert.ok(all.every((k) => k.length < 100));
  } finally {
    await gh.close();
    await up.close();
  }
});

test('two Gatehouse processes and one Redis: 2N requests against a limit of N pass exactly N', async (t) => {
  const redis = await redisServer(t);
  if (!redis) return;
  const up = await origin();
  const N = 25;
  // timeout 2s and deny: a slow Redis on a busy machine shows as a 503 here, never as an extra pass.
  const file = await configFile(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
accessLog: { enabled: false }
redis: { url: "${redis.url}", timeout: 2s }
middlewares:
  lim: { rateLimit: { rate: ${N}, per: 1h, burst: ${N}, store: redis, onStoreError: deny } }
routes: [{ name: all, middlewares: [lim], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`);
  const a = spawnGatehouse(['run', '-c', file]);
  const b = spawnGatehouse(['run', '-c', file]);
  try {
    const urls = [await listenerUrl(a), await listenerUrl(b)];
    // All at once, alternating between the two processes: the script decides them one at a time.
    const replies = await Promise.all(Array.from({ length: 2 * N }, (_, i) => send(`${urls[i % 2]}/r/${i}`)));
    const count = (s: number) => replies.filter((r) => r.status === s).length;
    assert.equal(count(200), N);
    assert.equal(count(429), N);
    // Both processes both passed and refused some.
    for (const k of [0, 1]) {
      const mine = replies.filter((_, i) => i % 2 === k).map((r) => r.status);
      assert.ok(mine.includes(200) || mine.includes(429));
    }
    assert.equal(up.seen.length, N);
    assert.deepEqual(await keys(redis), ['gatehouse:rl:lim:127.0.0.1']);
  } finally {
    for (const p of [a, b]) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0]);
    await up.close();
  }
});

/** Sends to `url` and returns the status with how long the answer took. */
async function timed(url: string): Promise<{ status: number; ms: number; reason?: string }> {
  const t0 = performance.now();
  const r = await send(url, { headers: { accept: 'application/json' } });
  let reason: string | undefined;
  try {
    reason = JSON.parse(r.body).reason;
  } catch {
    // an upstream answer
  }
  return { status: r.status, ms: performance.now() - t0, reason };
}

const HANG = 2000;

async function outageWorld(t: TestContext, redis: RedisServer): Promise<{ gh: Running; up: Origin }> {
  const up = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
redis: { url: "${redis.url}", timeout: 300ms }
middlewares:
  allow: { rateLimit: { rate: 2, per: 1h, burst: 2, store: redis, onStoreError: allow } }
  deny: { rateLimit: { rate: 2, per: 1h, burst: 2, store: redis, onStoreError: deny } }
  local: { rateLimit: { rate: 2, per: 1h, burst: 2, store: redis, onStoreError: local } }
routes:
  - { name: allow, match: { pathPrefix: /allow }, middlewares: [allow], upstream: u }
  - { name: deny, match: { pathPrefix: /deny }, middlewares: [deny], upstream: u }
  - { name: local, match: { pathPrefix: /local }, middlewares: [local], upstream: u }
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`);
  t.after(async () => {
    await gh.close();
    await up.close();
  });
  return { gh, up };
}

/** Three requests to each route; each answered within HANG ms. */
async function round(gh: Running): Promise<Record<string, (number | string)[]>> {
  const out: Record<string, (number | string)[]> = {};
  for (const name of ['allow', 'deny', 'local']) {
    out[name] = [];
    for (let i = 0; i < 3; i++) {
      const r = await timed(`${gh.url()}/${name}`);
      assert.ok(r.ms < HANG, `/${name} answered in ${r.ms} ms: no request hangs on the store`);
      out[name].push(r.reason ?? r.status);
    }
  }
  return out;
}

for (const how of ['killed', 'hung'] as const) {
  test(`Redis ${how} mid-run: onStoreError allow / deny / local, no request hangs, the circuit opens and closes again`, async (t) => {
    const redis = await redisServer(t);
    if (!redis) return;
    const { gh } = await outageWorld(t, redis);
    const err = stderrLines();
    t.after(() => err.stop());

    // Redis up: two pass on each route, the third is refused by Redis's bucket.
    assert.deepEqual(await round(gh), {
      allow: [200, 200, 'rate_limited'],
      deny: [200, 200, 'rate_limited'],
      local: [200, 200, 'rate_limited'],
    });
    assert.equal((await keys(redis)).length, 3);

    if (how === 'killed') await redis.kill();
    else redis.pause();
    // allow lets everything through, deny answers 503 store_unavailable, local decides with this
    // process's own bucket (it has not counted anything yet: full).
    const during = await round(gh);
    assert.deepEqual(during, {
      allow: [200, 200, 200],
      deny: ['store_unavailable', 'store_unavailable', 'store_unavailable'],
      local: [200, 200, 'rate_limited'],
    });
    const s = redisStats()[0];
    assert.equal(s.circuitOpens, 1);
    assert.notEqual(s.circuit, 'closed');
    assert.ok(s.shortCircuited > 0, 'the open circuit answers without Redis');
    if (how === 'hung') assert.ok(s.timeouts >= 3);
    else assert.ok(s.errors >= 3);
    assert.equal(err.lines.filter((l) => /redis .*circuit open/.test(l)).length, 1, 'one line when it opens');
    const deny = gh.log.entries().filter((e) => e.route === 'deny' && e.reason === 'store_unavailable');
    assert.equal(deny.length, 3);
    assert.equal(deny[0].status, 503);
    assert.equal((await send(`${gh.url()}/deny`)).headers['retry-after'], '1');

    // Back: a restarted Redis (empty) or the same one resumed. The next call after the client is
    // ready probes it, and decisions come from Redis again.
    if (how === 'killed') await redis.restart();
    else redis.resume();
    // Requests drive the probe: keep sending until one is decided by Redis.
    for (let i = 0; i < 200 && redisStats()[0].circuit !== 'closed'; i++) {
      await timed(`${gh.url()}/allow/probe`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(redisStats()[0].circuit, 'closed');
    assert.equal(
      err.lines.filter((l) => /redis .*circuit closed/.test(l)).length,
      1,
      'one line when it closes',
    );
    if (how === 'killed') {
      await redis.command('FLUSHALL');
      assert.deepEqual(await round(gh), {
        allow: [200, 200, 'rate_limited'],
        deny: [200, 200, 'rate_limited'],
        local: [200, 200, 'rate_limited'],
      });
    } else {
      // The resumed Redis kept its buckets: every route is still spent.
      const after = await round(gh);
      assert.deepEqual(after.deny, ['rate_limited', 'rate_limited', 'rate_limited']);
      assert.deepEqual(after.local, ['rate_limited', 'rate_limited', 'rate_limited']);
    }
    assert.equal((await keys(redis)).length, 3, 'decisions come from Redis again');
  });
}

test('Redis down at start: requests are answered by onStoreError within the timeout, then by Redis once it is up', async (t) => {
  const redis = await redisServer(t);
  if (!redis) return;
  await redis.kill();
  const { gh } = await outageWorld(t, redis);
  const during = await round(gh);
  assert.deepEqual(during.deny, ['store_unavailable', 'store_unavailable', 'store_unavailable']);
  assert.deepEqual(during.allow, [200, 200, 200]);
  await redis.restart();
  for (let i = 0; i < 200 && redisStats()[0].circuit !== 'closed'; i++) {
    await timed(`${gh.url()}/allow/probe`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(redisStats()[0].circuit, 'closed');
  assert.deepEqual((await round(gh)).deny, [200, 200, 'rate_limited']);
});

test('keys expire when the bucket is full again (PEXPIRE of the time to refill)', async (t) => {
  const redis = await redisServer(t);
  if (!redis) return;
  const up = await origin();
  // 10 tokens a second, 2 at once: after two requests the bucket is full again in 200 ms.
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
redis: { url: "${redis.url}", timeout: 2s }
middlewares:
  fast: { rateLimit: { rate: 10, per: 1s, burst: 2, store: redis, onStoreError: deny } }
routes: [{ name: r, middlewares: [fast], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`);
  try {
    assert.equal((await send(gh.url())).status, 200);
    assert.equal((await send(gh.url())).status, 200);
    const pttl = Number(await redis.command('PTTL', 'gatehouse:rl:fast:127.0.0.1'));
    assert.ok(pttl > 0 && pttl <= 200, `PTTL ${pttl}`);
    const end = Date.now() + 5000;
    while ((await keys(redis)).length > 0) {
      assert.ok(Date.now() < end, 'the key expired');
      await new Promise((r) => setTimeout(r, 20));
    }
    // A missing key is a full bucket.
    assert.equal((await send(gh.url())).status, 200);
    assert.equal((await send(gh.url())).status, 200);
  } finally {
    await gh.close();
    await up.close();
  }
});

test('a reload keeps the one client and the buckets; the last Plan closing closes it', async (t) => {
  const redis = await redisServer(t);
  if (!redis) return;
  const up = await origin();
  const yaml = (onStoreError: string) => `
listeners: [{ name: web, address: "127.0.0.1:0" }]
redis: { url: "${redis.url}", timeout: 2s }
middlewares:
  lim: { rateLimit: { rate: 2, per: 1h, burst: 2, store: redis, onStoreError: ${onStoreError} } }
routes: [{ name: r, middlewares: [lim], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`;
  const gh = await start(yaml('allow'));
  try {
    assert.equal((await send(gh.url())).status, 200);
    gh.gh.reload(testConfig(yaml('deny')));
    assert.equal((await send(gh.url())).status, 200);
    assert.equal((await send(gh.url())).status, 429, 'the bucket in Redis outlived the reload');
    assert.equal(redisStats().length, 1);
    const clients = String(await redis.command('CLIENT', 'LIST'))
      .trim()
      .split('\n');
    assert.equal(clients.filter((c) => !/cmd=client\|list/.test(c)).length, 1, 'one connection across Plans');
  } finally {
    await gh.close();
    await up.close();
  }
  assert.equal(redisStats().length, 0);
});

test('a reload that adds redis is refused (redis is read at start) and the running Plan stays', async () => {
  const up = await origin();
  const base = `
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: r, middlewares: [lim], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`;
  const gh = await start(`${base}middlewares: { lim: { rateLimit: { rate: 1, per: 1h } } }\n`);
  try {
    const next = testConfig(
      `${base}redis: { url: "redis://127.0.0.1:1" }\nmiddlewares: { lim: { rateLimit: { rate: 1, per: 1h, store: redis } } }\n`,
    );
    assert.throws(
      () => gh.gh.reload(next),
      /needs the top-level redis block in the running config .*takes a restart/,
    );
    assert.deepEqual([(await send(gh.url())).status, (await send(gh.url())).status], [200, 429]);
    assert.equal(redisStats().length, 0);
  } finally {
    await gh.close();
    await up.close();
  }
});

test('a password in the URL authenticates and never shows in logs or figures', async (t) => {
  const redis = await redisServer(t, { password: 's3cret-pw' });
  if (!redis) return;
  const up = await origin();
  const err = stderrLines();
  t.after(() => err.stop());
  const yaml = (pw: string) => `
listeners: [{ name: web, address: "127.0.0.1:0" }]
redis: { url: "redis://:${pw}@127.0.0.1:${redis.port}", timeout: 200ms }
middlewares:
  lim: { rateLimit: { rate: 1, per: 1h, burst: 1, store: redis, onStoreError: allow } }
routes: [{ name: r, middlewares: [lim], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`;
  const good = await start(yaml('s3cret-pw'));
  try {
    assert.deepEqual([(await send(good.url())).status, (await send(good.url())).status], [200, 429]);
    assert.equal(redisStats()[0].url, `redis://:***@127.0.0.1:${redis.port}`);
  } finally {
    await good.close();
  }
  // A wrong password: Redis refuses, onStoreError answers, the log line names the URL without it.
  const bad = await start(yaml('wrong-pw'));
  try {
    for (let i = 0; i < 4; i++) assert.equal((await send(bad.url())).status, 200);
    assert.notEqual(redisStats()[0].circuit, 'closed');
  } finally {
    await bad.close();
    await up.close();
  }
  const opened = err.lines.filter((l) => /circuit open/.test(l));
  assert.equal(opened.length, 1);
  assert.match(opened[0], /redis:\/\/:\*\*\*@127\.0\.0\.1/);
  assert.ok(err.lines.every((l) => !l.includes('wrong-pw') && !l.includes('s3cret-pw')));
});

test('validation: store: redis needs the top-level redis block', () => {
  const v = validateText(
    `
listeners: [{ name: web, address: "127.0.0.1:8080" }]
middlewares: { lim: { rateLimit: { rate: 1, store: redis } } }
routes: [{ name: r, middlewares: [lim], upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`,
    'c.yaml',
  );
  assert.equal(v.config, undefined);
  assert.ok(
    v.errors.some(
      (e) => e.key === 'middlewares.lim.rateLimit.store' && /needs the top-level redis block/.test(e.reason),
    ),
    JSON.stringify(v.errors),
  );
});

test('no Redis configured: no Redis code is loaded', () => {
  // A fresh process runs a Gatehouse with a memory rate limit and lists the modules it loaded.
  const script = `
import { Gatehouse } from './src/gatehouse.ts';
import { validateText } from './src/config/validate.ts';
import { createRequire } from 'node:module';
const v = validateText('listeners: [{ name: web, address: "127.0.0.1:0" }]\\nmiddlewares: { lim: { rateLimit: { rate: 1 } } }\\nroutes: [{ name: r, middlewares: [lim], upstream: u }]\\nupstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }\\n', 'c.yaml');
const gh = await Gatehouse.start(v.config, { say() {} });
await fetch(gh.listeners[0].url).then((r) => r.arrayBuffer());
await gh.close(0);
const cache = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify(cache.filter((k) => k.includes('@redis'))));
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url).pathname,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').pop(), '[]');
});
