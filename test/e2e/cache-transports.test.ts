// The cache behaves the same on every transport a client may use: HTTP/1.1 in clear and over TLS,
// HTTP/2 over TLS and h2c. For each: a miss then a hit, HEAD from a stored GET, a Range and a
// conditional request answered from the store, a coalesced burst against a slow origin, and a
// 4 MiB body stored while it streams, read along by a second client that arrives half way.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ClientHttp2Session, connect as connectH2 } from 'node:http2';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { makeCA, makeCert, tempDir } from '../helpers/certs.ts';
import { type Running, start, until } from '../helpers/gatehouse.ts';
import { type Origin, origin } from '../helpers/origin.ts';
import { hasCommand } from '../helpers/require.ts';

type Transport = 'h1' | 'h1s' | 'h2' | 'h2c';
const TRANSPORTS: readonly Transport[] = ['h1', 'h1s', 'h2', 'h2c'];

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** One client per transport: `open` resolves with the head, the body follows in `body`. */
interface Client {
  open(
    path: string,
    headers?: Record<string, string>,
    method?: string,
  ): Promise<Omit<Answer, 'body'> & { body: Promise<Buffer> }>;
  close(): Promise<void>;
}

async function fetchAll(
  c: Client,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  const r = await c.open(path, headers, method);
  return { ...r, body: await r.body };
}

function undiciClient(base: string, agent: Agent): Client {
  return {
    async open(path, headers = {}, method = 'GET') {
      const r = await request(`${base}${path}`, { dispatcher: agent, method: method as 'GET', headers });
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.headers)) h[k] = Array.isArray(v) ? v.join(', ') : String(v);
      return { status: r.statusCode, headers: h, body: r.body.arrayBuffer().then((b) => Buffer.from(b)) };
    },
    close: () => agent.close(),
  };
}

function h2Client(session: ClientHttp2Session): Client {
  return {
    open(path, headers = {}, method = 'GET') {
      return new Promise((resolve, reject) => {
        const s = session.request({ ':method': method, ':path': path, ...headers });
        const chunks: Buffer[] = [];
        const body = new Promise<Buffer>((res, rej) => {
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => res(Buffer.concat(chunks)));
          s.on('error', rej);
        });
        body.catch(() => {});
        s.on('response', (h) => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(h))
            if (!k.startsWith(':')) out[k] = Array.isArray(v) ? v.join(', ') : String(v);
          resolve({ status: Number(h[':status']), headers: out, body });
        });
        s.on('error', reject);
        s.end();
      });
    },
    close: () => new Promise<void>((r) => session.close(() => r())),
  };
}

// ---------------------------------------------------------------- the origin

const counts = new Map<string, number>();
const count = (path: string) => counts.get(path) ?? 0;
/** Gates the origin waits on (slow and large answers), opened by the tests. */
const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
function gate(name: string) {
  let g = gates.get(name);
  if (g === undefined) {
    let open!: () => void;
    const promise = new Promise<void>((r) => {
      open = r;
    });
    g = { promise, open };
    gates.set(name, g);
  }
  return g;
}
/** Origin writes of the large body's first half, by path. */
const halfWritten = new Set<string>();

const LARGE = 4 * 1024 * 1024;
function largeBody(t: string): Buffer {
  const b = Buffer.alloc(LARGE);
  const seed = t.length * 31;
  for (let i = 0; i < b.length; i += 4) b.writeUInt32BE(((i >>> 2) * 2654435761 + seed) >>> 0, i);
  return b;
}

/** 1,000 bytes: large enough that two small ranges are worth a multipart answer. */
const BASIC = `the basic body ${'0123456789abcdef'.repeat(62)}\n`.slice(0, 999) + '\n';

async function handler(req: IncomingMessage, res: ServerResponse) {
  const path = req.url ?? '/';
  counts.set(path, count(path) + 1);
  const kind = path.split('/')[2];
  const t = path.split('/')[1];
  if (kind === 'basic') {
    res.writeHead(200, {
      'cache-control': 'max-age=600',
      etag: '"basic-1"',
      'last-modified': 'Tue, 01 Sep 2026 10:00:00 GMT',
      'content-type': 'text/plain',
      'content-length': String(BASIC.length),
    });
    res.end(BASIC);
    return;
  }
  if (kind === 'slow') {
    await gate(path).promise;
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain' });
    res.end(`slow answer ${count(path)} for ${t}\n`);
    return;
  }
  if (kind === 'large') {
    const body = largeBody(t);
    res.writeHead(200, {
      'cache-control': 'max-age=600',
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
    });
    res.write(body.subarray(0, LARGE / 2));
    halfWritten.add(path);
    await gate(path).promise;
    res.end(body.subarray(LARGE / 2));
    return;
  }
  res.writeHead(404);
  res.end();
}

// ---------------------------------------------------------------- setup

let up: Origin;
let gh: Running;
const clients = new Map<Transport, Client>();
const haveOpenssl = hasCommand('openssl');

before(async () => {
  if (!haveOpenssl) return;
  up = await origin((req, res) => void handler(req, res));
  const dir = tempDir();
  const ca = makeCA(dir);
  const cert = makeCert(dir, ca, 'cache.example.test', ['127.0.0.1']);
  gh = await start(`
listeners:
  - { name: plain, address: "127.0.0.1:0", h2c: true }
  - name: tls
    address: "127.0.0.1:0"
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }] }
middlewares:
  c: { cache: { maxSize: 64mb, maxObjectSize: 8mb } }
routes: [{ name: all, middlewares: [c], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`);
  const plain = gh.url('plain');
  const tls = gh.url('tls');
  clients.set('h1', undiciClient(plain, new Agent({ allowH2: false })));
  clients.set('h1s', undiciClient(tls, new Agent({ allowH2: false, connect: { ca: ca.cert } })));
  clients.set('h2', h2Client(connectH2(tls, { ca: ca.cert })));
  clients.set('h2c', h2Client(connectH2(plain)));
});

after(async () => {
  if (!haveOpenssl) return;
  for (const c of clients.values()) await c.close();
  await gh.close();
  await up.close();
});

/** The listeners need a certificate made with openssl: skipped with the reason when it is missing. */
function cacheTest(name: string, fn: (c: Client, t: Transport) => Promise<void>) {
  for (const t of TRANSPORTS)
    test(`${t}: ${name}`, async (ctx) => {
      if (!haveOpenssl) {
        if (process.env.GATEHOUSE_TEST_REQUIRE_ALL === '1') throw new Error('openssl is not installed');
        ctx.skip('openssl is not installed (the TLS listener needs a certificate)');
        return;
      }
      await fn(clients.get(t) as Client, t);
    });
}

// ---------------------------------------------------------------- the behaviours

cacheTest('a miss, then a hit that never reaches the origin', async (c, t) => {
  const p = `/${t}/basic`;
  const a = await fetchAll(c, p);
  assert.equal(a.status, 200);
  assert.equal(a.headers['cache-status'], 'gatehouse; fwd=miss; stored');
  assert.equal(a.body.toString(), BASIC);
  const b = await fetchAll(c, p);
  assert.equal(b.status, 200);
  assert.match(b.headers['cache-status'], /^gatehouse; hit; ttl=\d+$/);
  assert.match(b.headers.age, /^\d+$/);
  assert.equal(b.headers.etag, '"basic-1"');
  assert.equal(b.headers['content-length'], String(BASIC.length));
  assert.equal(b.body.toString(), BASIC);
  assert.equal(count(p), 1);
});

cacheTest('HEAD is answered from the stored GET', async (c, t) => {
  const p = `/${t}/basic`;
  await fetchAll(c, p);
  const h = await fetchAll(c, p, {}, 'HEAD');
  assert.equal(h.status, 200);
  assert.match(h.headers['cache-status'], /^gatehouse; hit/);
  assert.equal(h.headers['content-length'], String(BASIC.length));
  assert.equal(h.headers.etag, '"basic-1"');
  assert.equal(h.body.length, 0);
  assert.equal(count(p), 1);
});

cacheTest('a Range is answered 206 from the store; several ranges as multipart', async (c, t) => {
  const p = `/${t}/basic`;
  await fetchAll(c, p);
  const r = await fetchAll(c, p, { range: 'bytes=4-8' });
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], `bytes 4-8/${BASIC.length}`);
  assert.equal(r.headers['content-length'], '5');
  assert.equal(r.body.toString(), BASIC.slice(4, 9));
  assert.match(r.headers['cache-status'], /^gatehouse; hit/);
  const m = await fetchAll(c, p, { range: 'bytes=0-2,-3' });
  assert.equal(m.status, 206);
  const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(m.headers['content-type'])?.[1];
  assert.ok(boundary, m.headers['content-type']);
  assert.equal(m.headers['content-length'], String(m.body.length));
  const text = m.body.toString();
  assert.match(
    text,
    new RegExp(`Content-Range: bytes 0-2/${BASIC.length}\\r\\n\\r\\n${BASIC.slice(0, 3)}\\r\\n`, 'i'),
  );
  assert.ok(text.includes(`${BASIC.slice(-3)}\r\n--${boundary}--`));
  // If-Range with the stored ETag: the range; with another: the whole body.
  const same = await fetchAll(c, p, { range: 'bytes=0-3', 'if-range': '"basic-1"' });
  assert.equal(same.status, 206);
  const other = await fetchAll(c, p, { range: 'bytes=0-3', 'if-range': '"other"' });
  assert.equal(other.status, 200);
  assert.equal(other.body.toString(), BASIC);
  assert.equal(count(p), 1);
});

cacheTest('a conditional request is answered 304 from the store', async (c, t) => {
  const p = `/${t}/basic`;
  await fetchAll(c, p);
  const inm = await fetchAll(c, p, { 'if-none-match': '"basic-1"' });
  assert.equal(inm.status, 304);
  assert.equal(inm.headers.etag, '"basic-1"');
  assert.match(inm.headers['cache-status'], /^gatehouse; hit/);
  assert.equal(inm.body.length, 0);
  const ims = await fetchAll(c, p, { 'if-modified-since': 'Tue, 01 Sep 2026 10:00:00 GMT' });
  assert.equal(ims.status, 304);
  const changed = await fetchAll(c, p, { 'if-none-match': '"basic-0"' });
  assert.equal(changed.status, 200);
  assert.equal(changed.body.toString(), BASIC);
  assert.equal(count(p), 1);
});

cacheTest('a burst of 20 concurrent requests to a slow origin makes one upstream request', async (c, t) => {
  const p = `/${t}/slow`;
  const all = Array.from({ length: 20 }, () => fetchAll(c, p));
  await until(() => count(p) >= 1, 10_000, 'the first request upstream');
  // The others reach Gatehouse and wait on the first; whenever one arrives, it is answered from
  // that same fetch (collapsed while it streams, a hit after), so the count holds either way.
  await new Promise((r) => setTimeout(r, 200));
  gate(p).open();
  const answers = await Promise.all(all);
  for (const a of answers) {
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), `slow answer 1 for ${t}\n`);
  }
  const kinds = answers.map((a) => a.headers['cache-status'].replace(/; ttl=\d+/, ''));
  assert.equal(kinds.filter((k) => k === 'gatehouse; fwd=miss; stored').length, 1, kinds.join(' | '));
  assert.ok(
    kinds.every((k) => /^gatehouse; (fwd=miss; (stored|collapsed)|hit)$/.test(k)),
    kinds.join(' | '),
  );
  assert.equal(count(p), 1);
});

cacheTest(
  'a 4 MiB body is stored while it streams; a client arriving half way reads it along',
  async (c, t) => {
    const p = `/${t}/large`;
    const expected = largeBody(t);
    const first = await c.open(p);
    assert.equal(first.status, 200);
    assert.equal(first.headers['cache-status'], 'gatehouse; fwd=miss; stored');
    await until(() => halfWritten.has(p), 10_000, 'the origin to write half');
    // The second client gets its head from the entry being written.
    const second = await c.open(p);
    assert.equal(second.status, 200);
    assert.equal(second.headers['cache-status'], 'gatehouse; fwd=miss; collapsed');
    assert.equal(second.headers['content-length'], String(LARGE));
    gate(p).open();
    const [a, b] = await Promise.all([first.body, second.body]);
    assert.equal(a.length, LARGE);
    assert.ok(a.equals(expected), 'the first client’s body is exact');
    assert.equal(b.length, LARGE);
    assert.ok(b.equals(expected), 'the second client’s body is exact');
    // And now it is whole in the store.
    const third = await fetchAll(c, p);
    assert.match(third.headers['cache-status'], /^gatehouse; hit/);
    assert.ok(third.body.equals(expected));
    assert.equal(count(p), 1);
  },
);
