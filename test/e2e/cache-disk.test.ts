// The disk store across restarts: what one Gatehouse stored, the next one on the same directory
// serves, byte for byte and without asking the origin; a purge removes the files; leftovers of an
// interrupted write and corrupt heads are cleaned up at start; a smaller maxSize loads only what fits.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { type Running, start } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';
import { configFile, listenerUrl, spawnGatehouse } from '../helpers/process.ts';

const TOKEN = 'disk-cache-test-token-0123';

/** A counting origin whose answers depend on `version` (so a body from before a restart shows). */
async function versionedOrigin() {
  const state = { version: 1, counts: new Map<string, number>() };
  const up = await origin((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    state.counts.set(url, (state.counts.get(url) ?? 0) + 1);
    res.writeHead(200, answer(url, state.version, req).headers);
    res.end(answer(url, state.version, req).body);
  });
  const total = () => [...state.counts.values()].reduce((a, b) => a + b, 0);
  return { up, state, total };
}

/** Bodies of many sizes: /big/* are 200 KiB (more than one 64 KiB read from the file). */
function answer(url: string, version: number, req?: IncomingMessage) {
  const path = url.split('?')[0];
  const headers: Record<string, string> = { 'cache-control': 'max-age=600', 'content-type': 'text/plain' };
  let body: Buffer;
  if (path.startsWith('/big')) {
    body = Buffer.alloc(200 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + version * 13 + path.length) % 251;
    headers['content-type'] = 'application/octet-stream';
  } else if (path === '/vary') {
    headers.vary = 'Accept-Language';
    body = Buffer.from(`v${version} ${String(req?.headers['accept-language'] ?? 'none')}\n`);
  } else if (path.startsWith('/sized/')) {
    body = Buffer.alloc(100 * 1024, `v${version}${path}|`);
  } else body = Buffer.from(`v${version} ${url}\n`);
  headers['content-length'] = String(body.length);
  return { headers, body };
}

const config = (dir: string, up: string, sizes = 'maxSize: 16mb, maxObjectSize: 1mb') => `
admin: { address: "127.0.0.1:0", token: "${TOKEN}" }
listeners: [{ name: web, address: "127.0.0.1:0" }]
middlewares:
  d: { cache: { store: disk, path: "${dir}", ${sizes} } }
routes: [{ name: all, middlewares: [d], upstream: u }]
upstreams: { u: { targets: [{ url: "${up}" }] } }
`;

/**
 * The cache key holds the authority the client asked for (RFC 9111 §2), port included: each start
 * here listens on a new port, so the requests name one fixed host, as a real site's clients do.
 */
const HOST = 'cache.test';

async function get(gh: Running, path: string, headers: Record<string, string> = {}, method = 'GET') {
  const r = await request(`${gh.url()}${path}`, {
    method: method as 'GET',
    headers: { host: HOST, ...headers },
  });
  return {
    status: r.statusCode,
    headers: r.headers,
    cacheStatus: String(r.headers['cache-status']),
    body: Buffer.from(await r.body.arrayBuffer()),
  };
}

async function adminCall(gh: Running, method: string, path: string, body?: unknown) {
  const url = (gh.gh.admin as { url: string }).url;
  const r = await send(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, data: JSON.parse(r.body) };
}

async function figures(gh: Running) {
  const r = await adminCall(gh, 'GET', '/api/v1/cache');
  assert.equal(r.status, 200);
  return r.data[0] as { bytes: number; objects: number; evictions: number; maxSize: number };
}

/** The directory's entries as url → stem, read from the .meta files. */
function metas(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const name of readdirSync(dir))
    if (name.endsWith('.meta')) {
      const m = JSON.parse(readFileSync(join(dir, name), 'utf8'));
      const url = new URL(m.url).pathname;
      out.set(url, [...(out.get(url) ?? []), name.slice(0, -5)]);
    }
  return out;
}

const files = (dir: string, ext: string) => readdirSync(dir).filter((n) => n.endsWith(ext));

test('disk store: a restart keeps the entries (a large one, Vary variants); purge by URL removes the files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-disk-cache-'));
  const { up, state, total } = await versionedOrigin();
  let gh = await start(config(dir, up.url));
  try {
    const paths = ['/small', '/small?q=1', '/big/one'];
    for (const p of paths) {
      const r = await get(gh, p);
      assert.match(r.cacheStatus, /fwd=miss; stored/, p);
      assert.ok(r.body.equals(answer(p, 1).body), p);
    }
    for (const lang of ['en', 'fr']) {
      const r = await get(gh, '/vary', { 'accept-language': lang });
      assert.match(r.cacheStatus, /fwd=miss; stored/);
      assert.equal(r.body.toString(), `v1 ${lang}\n`);
    }
    assert.match((await get(gh, '/big/one')).cacheStatus, /; hit/, 'a hit before the restart too');
    assert.equal(total(), 5);
    await gh.close();

    // Five complete pairs on disk, nothing half-written.
    assert.equal(files(dir, '.body').length, 5);
    assert.equal(files(dir, '.meta').length, 5);
    assert.equal(files(dir, '.tmp').length, 0);

    // The origin now answers differently: what the cache serves must be what it stored.
    state.version = 2;
    state.counts.clear();
    gh = await start(config(dir, up.url));
    const f = await figures(gh);
    assert.equal(f.objects, 5, 'every entry loaded');
    for (const p of paths) {
      const r = await get(gh, p);
      assert.match(r.cacheStatus, /^gatehouse; hit/, p);
      assert.ok(r.body.equals(answer(p, 1).body), `${p}: the body stored before the restart`);
      assert.equal(r.headers['content-length'], String(answer(p, 1).body.length));
    }
    for (const lang of ['en', 'fr']) {
      const r = await get(gh, '/vary', { 'accept-language': lang });
      assert.match(r.cacheStatus, /^gatehouse; hit/, `variant ${lang}`);
      assert.equal(r.body.toString(), `v1 ${lang}\n`);
    }
    assert.equal(total(), 0, 'nothing reached the origin');
    // Read from the file: a range inside the second 64 KiB, and HEAD.
    const big = answer('/big/one', 1).body;
    const part = await get(gh, '/big/one', { range: 'bytes=70000-70099' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 70000-70099/${big.length}`);
    assert.ok(part.body.equals(big.subarray(70000, 70100)));
    const head = await get(gh, '/big/one', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(big.length));
    assert.equal(head.body.length, 0);
    assert.ok((await get(gh, '/big/one')).body.equals(big));
    // Another language is a new variant: the origin's new answer.
    const de = await get(gh, '/vary', { 'accept-language': 'de' });
    assert.match(de.cacheStatus, /fwd=miss; stored/);
    assert.equal(de.body.toString(), 'v2 de\n');
    assert.equal(total(), 1);

    // Purge by URL: the entry's files go, and the next request is a miss.
    const host = HOST;
    const before = metas(dir);
    const bigStem = (before.get('/big/one') as string[])[0];
    assert.ok(existsSync(join(dir, `${bigStem}.body`)));
    assert.deepEqual(
      (await adminCall(gh, 'POST', '/api/v1/cache/purge', { url: `http://${host}/big/one` })).data,
      {
        purged: 1,
      },
    );
    assert.equal(existsSync(join(dir, `${bigStem}.body`)), false, 'the body file is removed');
    assert.equal(existsSync(join(dir, `${bigStem}.meta`)), false, 'the head file is removed');
    const refetched = await get(gh, '/big/one');
    assert.match(refetched.cacheStatus, /fwd=miss; stored/);
    assert.ok(refetched.body.equals(answer('/big/one', 2).body));
    // Every variant of a URL goes with it.
    const varyStems = metas(dir).get('/vary') as string[];
    assert.equal(varyStems.length, 3);
    assert.deepEqual(
      (await adminCall(gh, 'POST', '/api/v1/cache/purge', { url: `http://${host}/vary` })).data,
      {
        purged: 3,
      },
    );
    for (const s of varyStems) assert.equal(existsSync(join(dir, `${s}.meta`)), false);
    assert.equal(metas(dir).has('/vary'), false);
  } finally {
    await gh.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('disk store: leftovers of interrupted writes are removed at start; corrupt heads are dropped without a crash', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-disk-cache-'));
  const { up, state, total } = await versionedOrigin();
  let gh = await start(config(dir, up.url));
  try {
    for (const p of ['/keep', '/truncated', '/garbage', '/wrong-types', '/no-body', '/short-body'])
      assert.match((await get(gh, p)).cacheStatus, /stored/);
    await gh.close();
    const stems = metas(dir);
    const stem = (p: string) => (stems.get(p) as string[])[0];
    // A body being written when the process died, and a head being replaced.
    writeFileSync(join(dir, `${'a'.repeat(40)}.${process.pid}.0123456789ab.tmp`), 'partial body');
    writeFileSync(join(dir, `${stem('/keep')}.meta.${process.pid}.tmp`), '{"key":');
    // A body whose head was never written (a crash between the two renames).
    writeFileSync(join(dir, `${'b'.repeat(40)}.body`), 'orphan');
    // Heads that cannot be read back.
    const metaOf = (p: string) => join(dir, `${stem(p)}.meta`);
    writeFileSync(metaOf('/truncated'), readFileSync(metaOf('/truncated'), 'utf8').slice(0, 30));
    writeFileSync(metaOf('/garbage'), Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x7b]));
    const m = JSON.parse(readFileSync(metaOf('/wrong-types'), 'utf8'));
    writeFileSync(metaOf('/wrong-types'), JSON.stringify({ ...m, vary: 7, headers: null, fresh: 'soon' }));
    rmSync(join(dir, `${stem('/no-body')}.body`));
    writeFileSync(join(dir, `${stem('/short-body')}.body`), 'cut');

    state.version = 2;
    state.counts.clear();
    gh = await start(config(dir, up.url));
    assert.equal(files(dir, '.tmp').length, 0, 'temporary files removed');
    assert.equal(existsSync(join(dir, `${'b'.repeat(40)}.body`)), false, 'a body without a head removed');
    for (const p of ['/truncated', '/garbage', '/no-body', '/short-body']) {
      assert.equal(existsSync(metaOf(p)), false, `${p}: its head removed`);
      assert.equal(existsSync(join(dir, `${stem(p)}.body`)), false, `${p}: its body removed`);
    }
    const keep = await get(gh, '/keep');
    assert.match(keep.cacheStatus, /^gatehouse; hit/);
    assert.equal(keep.body.toString(), 'v1 /keep\n');
    assert.equal(total(), 0);
    // Each dropped entry is fetched again: a miss with the origin's new answer, never an error.
    // /wrong-types last: it is the one that fails today (a 500 on every request for it).
    for (const p of ['/truncated', '/garbage', '/no-body', '/short-body', '/wrong-types']) {
      const r = await get(gh, p);
      assert.equal(r.status, 200, `${p}: ${r.status} ${r.body.toString().slice(0, 80)}`);
      assert.match(r.cacheStatus, /fwd=miss; stored/, p);
      assert.equal(r.body.toString(), `v2 ${p}\n`, p);
    }
    assert.equal(total(), 5);
    // And the process is still serving.
    assert.match((await get(gh, '/keep')).cacheStatus, /; hit/);
  } finally {
    await gh.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('disk store: restarted with a smaller maxSize, it loads what fits (the most recent) and removes the rest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-disk-cache-'));
  const { up, state, total } = await versionedOrigin();
  let gh = await start(config(dir, up.url, 'maxSize: 4mb, maxObjectSize: 1mb'));
  try {
    const paths = Array.from({ length: 10 }, (_, i) => `/sized/${i}`);
    for (const p of paths) {
      assert.match((await get(gh, p)).cacheStatus, /stored/);
      // Distinct modification times, in request order.
      await new Promise((r) => setTimeout(r, 15));
    }
    assert.equal((await figures(gh)).objects, 10);
    await gh.close();
    assert.equal(files(dir, '.body').length, 10);

    state.version = 2;
    state.counts.clear();
    // Each entry costs 100 KiB plus its head: five fit in 512 KiB, not six.
    gh = await start(config(dir, up.url, 'maxSize: 512kb, maxObjectSize: 256kb'));
    const f = await figures(gh);
    assert.ok(f.bytes <= 512 * 1024, `bytes ${f.bytes} within the new maxSize`);
    assert.equal(f.objects, 5);
    assert.equal(files(dir, '.body').length, 5, 'the files of what did not fit are removed');
    assert.equal(files(dir, '.meta').length, 5);
    // The five most recent are kept, and served as stored.
    for (const p of paths.slice(5)) {
      const r = await get(gh, p);
      assert.match(r.cacheStatus, /^gatehouse; hit/, p);
      assert.ok(r.body.equals(answer(p, 1).body), p);
    }
    assert.equal(total(), 0);
    for (const p of paths.slice(0, 5)) {
      const r = await get(gh, p);
      assert.match(r.cacheStatus, /fwd=miss/, `${p} was not loaded`);
      assert.ok(r.body.equals(answer(p, 2).body), p);
    }
    assert.ok((await figures(gh)).bytes <= 512 * 1024);
  } finally {
    await gh.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('disk store: a client arriving mid-stream reads along while the body goes to its file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-disk-cache-'));
  const size = 2 * 1024 * 1024;
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = (i * 31 + (i >>> 11)) % 256;
  let release: () => void = () => {};
  const released = new Promise<void>((r) => {
    release = r;
  });
  let half = false;
  let n = 0;
  const up = await origin(async (_req, res) => {
    n++;
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': String(size) });
    res.write(body.subarray(0, size / 2));
    half = true;
    await released;
    res.end(body.subarray(size / 2));
  });
  let gh = await start(config(dir, up.url, 'maxSize: 16mb, maxObjectSize: 4mb'));
  try {
    const first = await request(`${gh.url()}/stream`, { headers: { host: HOST } });
    const firstBody = first.body.arrayBuffer();
    assert.match(String(first.headers['cache-status']), /fwd=miss; stored/);
    const end = Date.now() + 10_000;
    while (!half && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    const second = await request(`${gh.url()}/stream`, { headers: { host: HOST } });
    assert.equal(second.headers['cache-status'], 'gatehouse; fwd=miss; collapsed');
    const secondBody = second.body.arrayBuffer();
    release();
    assert.ok(Buffer.from(await firstBody).equals(body), 'the first client’s body');
    assert.ok(Buffer.from(await secondBody).equals(body), 'the reader along got every byte');
    const third = await get(gh, '/stream');
    assert.match(third.cacheStatus, /^gatehouse; hit/);
    assert.ok(third.body.equals(body), 'served from the file');
    assert.equal(files(dir, '.body').length, 1);
    await gh.close();
    gh = await start(config(dir, up.url, 'maxSize: 16mb, maxObjectSize: 4mb'));
    const fourth = await get(gh, '/stream');
    assert.match(fourth.cacheStatus, /^gatehouse; hit/);
    assert.ok(fourth.body.equals(body), 'and after a restart');
    assert.equal(n, 1);
  } finally {
    release();
    await gh.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('disk store: a stale entry whose head has the wrong shape does not bring the process down', async () => {
  // In a child process: this head used to make Gatehouse exit (an uncaught TypeError while building
  // the revalidation request), which in this process would end the test run.
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-disk-cache-'));
  const { up, state, total } = await versionedOrigin();
  const gh = await start(config(dir, up.url));
  let p: ReturnType<typeof spawnGatehouse> | undefined;
  try {
    assert.match((await get(gh, '/shape')).cacheStatus, /stored/);
    await gh.close();
    const stem = (metas(dir).get('/shape') as string[])[0];
    const file = join(dir, `${stem}.meta`);
    const m = JSON.parse(readFileSync(file, 'utf8'));
    // Valid JSON, a body of the right size, but no headers object, and stale (so it is revalidated).
    writeFileSync(file, JSON.stringify({ ...m, headers: null, fresh: { ...m.fresh, lifetime: 0 } }));
    state.version = 2;
    state.counts.clear();
    const engine = process.env.GATEHOUSE_TEST_ENGINE === 'node' ? ', engine: node' : '';
    p = spawnGatehouse([
      'run',
      '-c',
      await configFile(
        config(dir, up.url)
          .replace(
            'admin: { address: "127.0.0.1:0", token: "disk-cache-test-token-0123" }\n',
            'accessLog: { enabled: false }\n',
          )
          .replace('address: "127.0.0.1:0" }]', `address: "127.0.0.1:0"${engine} }]`),
      ),
    ]);
    const url = await listenerUrl(p);
    const r = await send(`${url}/shape`).catch((e: Error) => ({ status: 0, body: String(e), headers: {} }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(p.child.exitCode, null, `Gatehouse exited: ${p.stderr.split('\n').slice(0, 6).join('\n')}`);
    assert.equal(r.status, 200, r.body.slice(0, 80));
    assert.equal(r.body, 'v2 /shape\n', 'the unreadable entry is dropped and fetched again');
    assert.equal(total(), 1);
  } finally {
    if (p !== undefined && p.child.exitCode === null) p.child.kill('SIGTERM');
    await p?.exited;
    await gh.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
