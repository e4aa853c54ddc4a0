// The cache middleware, rule by rule (RFC 9111, RFC 5861, RFC 9211, RFC 9213), against a real
// origin that counts what reaches it: a hit, a refresh and a coalesced burst each show in its count.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { type Running, start, testConfig, until } from '../helpers/gatehouse.ts';
import { type Reply, send } from '../helpers/http.ts';
import { type Origin, origin } from '../helpers/origin.ts';

/** What the origin answers for a path: called with the request and how many it has seen for that path. */
type Spec = (req: IncomingMessage, res: ServerResponse, n: number) => void;

const specs = new Map<string, Spec>();
const counts = new Map<string, number>();
let up: Origin;
let gh: Running;

const count = (path: string) => counts.get(path) ?? 0;
const HTTP_DATE = (msAgo: number) => new Date(Date.now() - msAgo).toUTCString();

function on(path: string, spec: Spec): string {
  specs.set(path, spec);
  return path;
}

/** A fixed answer: status, headers and body. */
function fixed(status: number, headers: Record<string, string | string[]>, body = ''): Spec {
  return (_req, res, n) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(body === '' ? `body ${n}` : body);
  };
}

async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return send(`${gh.url()}${path}`, { method, headers });
}

before(async () => {
  up = await origin((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const n = (counts.get(req.url ?? '') ?? 0) + 1;
    counts.set(req.url ?? '', n);
    if (path !== req.url) counts.set(path, (counts.get(path) ?? 0) + 1);
    const spec = specs.get(path);
    if (spec === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    if (req.method === 'POST' || req.method === 'PUT' || req.method === 'DELETE') req.resume();
    spec(req, res, n);
  });
  gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
middlewares:
  c: { cache: { maxSize: 8mb, maxObjectSize: 1mb } }
  nocoalesce: { cache: { coalesce: false } }
routes:
  - { name: solo, match: { pathPrefix: /solo/ }, middlewares: [nocoalesce], upstream: o }
  - { name: r, match: { pathPrefix: / }, middlewares: [c], upstream: o }
upstreams:
  o: { targets: [{ url: "${up.url}" }] }
`);
});

after(async () => {
  await gh.close();
  await up.close();
});

test('max-age: the second request is a hit, with Age and Cache-Status, and never reaches the origin', async () => {
  const p = on('/fresh', fixed(200, { 'cache-control': 'max-age=60' }));
  const a = await get(p);
  assert.equal(a.headers['cache-status'], 'gatehouse; fwd=miss; stored');
  const b = await get(p);
  assert.equal(b.body, a.body);
  assert.match(String(b.headers['cache-status']), /^gatehouse; hit; ttl=\d+$/);
  assert.match(String(b.headers.age), /^\d+$/);
  assert.equal(count(p), 1);
});

test('the query is part of the key', async () => {
  const p = on('/query', fixed(200, { 'cache-control': 'max-age=60' }));
  await get(`${p}?a=1`);
  await get(`${p}?a=2`);
  const again = await get(`${p}?a=1`);
  assert.match(String(again.headers['cache-status']), /hit/);
  assert.equal(count(p), 2);
});

test('s-maxage wins over max-age for a shared cache', async () => {
  const p = on('/smaxage', fixed(200, { 'cache-control': 'max-age=0, s-maxage=60' }));
  await get(p);
  assert.match(String((await get(p)).headers['cache-status']), /hit/);
  assert.equal(count(p), 1);
});

test('Expires against Date gives freshness; an Expires in the past does not', async () => {
  const good = on(
    '/expires',
    fixed(200, { date: HTTP_DATE(0), expires: new Date(Date.now() + 60_000).toUTCString() }),
  );
  await get(good);
  assert.match(String((await get(good)).headers['cache-status']), /hit/);
  const past = on('/expired', fixed(200, { date: HTTP_DATE(0), expires: HTTP_DATE(10_000) }));
  await get(past);
  await get(past);
  assert.equal(count(past), 2);
  // An invalid Expires means already expired.
  const bad = on('/expires-bad', fixed(200, { expires: '0' }));
  await get(bad);
  await get(bad);
  assert.equal(count(bad), 2);
});

test('Age from the upstream counts: max-age=60 with Age: 100 is stale on arrival', async () => {
  const p = on('/aged', fixed(200, { 'cache-control': 'max-age=60', age: '100' }));
  await get(p);
  await get(p);
  assert.equal(count(p), 2);
});

test('heuristic freshness from Last-Modified only for heuristically cacheable statuses', async () => {
  // Modified 1000 s ago: 10% gives 100 s of freshness.
  const ok = on('/heuristic', fixed(200, { 'last-modified': HTTP_DATE(1_000_000), date: HTTP_DATE(0) }));
  await get(ok);
  const hit = await get(ok);
  assert.match(String(hit.headers['cache-status']), /hit; ttl=(9\d|100)/);
  const notFound = on('/heuristic-404', fixed(404, { 'last-modified': HTTP_DATE(1_000_000) }));
  await get(notFound);
  assert.match(String((await get(notFound)).headers['cache-status']), /hit/);
  // 302 is not heuristically cacheable: not stored without explicit freshness.
  const found = on('/heuristic-302', fixed(302, { location: '/x', 'last-modified': HTTP_DATE(1_000_000) }));
  const r = await get(found);
  assert.match(String(r.headers['cache-status']), /fwd=miss; detail=no-freshness/);
  await get(found);
  assert.equal(count(found), 2);
  // 500 is never stored without explicit freshness (and must-understand would not make it).
  const err = on('/heuristic-500', fixed(500, { 'last-modified': HTTP_DATE(1_000_000) }));
  await get(err);
  await get(err);
  assert.equal(count(err), 2);
});

test('what is never stored: no-store, private, Set-Cookie, Vary: *, a no-store request', async () => {
  for (const [path, headers, why] of [
    ['/no-store', { 'cache-control': 'max-age=60, no-store' }, 'no-store'],
    ['/private', { 'cache-control': 'private, max-age=60' }, 'private'],
    ['/cookie', { 'cache-control': 'max-age=60', 'set-cookie': 'sid=abc' }, 'set-cookie'],
    ['/vary-star', { 'cache-control': 'max-age=60', vary: '*' }, 'vary-star'],
  ] as const) {
    on(path, fixed(200, headers));
    const a = await get(path);
    assert.equal(a.headers['cache-status'], `gatehouse; fwd=miss; detail=${why}`, path);
    const b = await get(path);
    assert.equal(count(path), 2, path);
    if (path === '/cookie') assert.equal(b.headers['set-cookie'], 'sid=abc');
  }
  const p = on('/req-no-store', fixed(200, { 'cache-control': 'max-age=60' }));
  await get(p, { 'cache-control': 'no-store' });
  await get(p);
  assert.equal(count(p), 2);
});

test('a qualified private strips the named fields from what is stored (RFC 9111 §5.2.2.7)', async () => {
  const p = on(
    '/private-field',
    fixed(200, { 'cache-control': 'private="x-user", max-age=60', 'x-user': 'alice' }),
  );
  const a = await get(p);
  assert.equal(a.headers['x-user'], 'alice');
  const b = await get(p);
  assert.match(String(b.headers['cache-status']), /hit/);
  assert.equal(b.headers['x-user'], undefined);
});

test('must-understand: a status we understand is stored despite no-store', async () => {
  const p = on('/must-understand', fixed(200, { 'cache-control': 'max-age=60, no-store, must-understand' }));
  await get(p);
  assert.match(String((await get(p)).headers['cache-status']), /hit/);
  assert.equal(count(p), 1);
});

test('Authorization: not stored for others unless public, s-maxage or must-revalidate (§3.5)', async () => {
  const p = on('/auth', fixed(200, { 'cache-control': 'max-age=60' }));
  const a = await get(p, { authorization: 'Bearer x' });
  assert.equal(a.headers['cache-status'], 'gatehouse; fwd=miss; detail=authorization');
  await get(p);
  assert.equal(count(p), 2);
  const pub = on('/auth-public', fixed(200, { 'cache-control': 'public, max-age=60' }));
  await get(pub, { authorization: 'Bearer x' });
  assert.match(String((await get(pub)).headers['cache-status']), /hit/);
  assert.equal(count(pub), 1);
});

test('Vary: a variant per normalised value of the named request header', async () => {
  const p = on('/vary', (req, res) => {
    res.writeHead(200, {
      'cache-control': 'max-age=60',
      vary: 'Accept-Language',
      'content-type': 'text/plain',
    });
    res.end(`lang ${req.headers['accept-language']}`);
  });
  const en = await get(p, { 'accept-language': 'en' });
  const de = await get(p, { 'accept-language': 'de' });
  assert.equal(en.body, 'lang en');
  assert.equal(de.body, 'lang de');
  const en2 = await get(p, { 'accept-language': 'EN' });
  assert.equal(en2.body, 'lang en');
  assert.match(String(en2.headers['cache-status']), /hit/);
  const list1 = await get(p, { 'accept-language': 'fr, en;q=0.5' });
  const list2 = await get(p, { 'accept-language': 'fr,en;q=0.5' });
  assert.equal(list2.body, list1.body);
  assert.match(String(list2.headers['cache-status']), /hit/);
  assert.equal(count(p), 3);
});

test('validation: a stale entry is revalidated with its ETag; the 304 refreshes the stored head', async () => {
  const p = on('/etag', (req, res, n) => {
    if (req.headers['if-none-match'] === '"v1"') {
      res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60', 'x-version': `refreshed ${n}` });
      res.end();
      return;
    }
    res.writeHead(200, {
      etag: '"v1"',
      'cache-control': 'max-age=0',
      'x-version': 'first',
      'content-type': 'text/plain',
    });
    res.end('the body');
  });
  await get(p);
  const b = await get(p);
  assert.equal(b.status, 200);
  assert.equal(b.body, 'the body');
  assert.equal(b.headers['x-version'], 'refreshed 2');
  assert.equal(b.headers['cache-status'], 'gatehouse; fwd=stale; fwd-status=304');
  assert.equal(up.seen.at(-1)?.headers['if-none-match'], '"v1"');
  // Fresh now (the 304 said max-age=60).
  const c = await get(p);
  assert.match(String(c.headers['cache-status']), /hit/);
  assert.equal(c.headers['x-version'], 'refreshed 2');
  assert.equal(count(p), 2);
});

test('validation by Last-Modified, and a changed resource replaces the entry', async () => {
  const lm = HTTP_DATE(3_600_000);
  const p = on('/lm', (req, res, n) => {
    if (n === 2 && req.headers['if-modified-since'] === lm) {
      res.writeHead(304, {});
      res.end();
      return;
    }
    res.writeHead(200, {
      'last-modified': n >= 3 ? HTTP_DATE(0) : lm,
      'cache-control': 'no-cache',
      'content-type': 'text/plain',
    });
    res.end(`version ${n}`);
  });
  assert.equal((await get(p)).body, 'version 1');
  assert.equal((await get(p)).body, 'version 1'); // 304: still version 1
  assert.equal((await get(p)).body, 'version 3'); // 200: the new one
  assert.equal(count(p), 3);
});

test('response no-cache: validated before every reuse', async () => {
  const p = on('/no-cache', (req, res) => {
    if (req.headers['if-none-match'] === '"n"') {
      res.writeHead(304, { etag: '"n"' });
      res.end();
      return;
    }
    res.writeHead(200, {
      etag: '"n"',
      'cache-control': 'no-cache, max-age=600',
      'content-type': 'text/plain',
    });
    res.end('nc');
  });
  await get(p);
  await get(p);
  const c = await get(p);
  assert.equal(c.body, 'nc');
  assert.equal(count(p), 3);
});

test('request no-cache and max-age=0 go to the origin (fwd=request); min-fresh too', async () => {
  const p = on('/req-no-cache', fixed(200, { 'cache-control': 'max-age=60', etag: '"r"' }));
  await get(p);
  const r = await get(p, { 'cache-control': 'no-cache' });
  assert.match(String(r.headers['cache-status']), /fwd=request/);
  await get(p, { 'cache-control': 'max-age=0' });
  await get(p, { 'cache-control': 'min-fresh=3600' });
  assert.equal(count(p), 4);
});

test('client conditional requests are answered 304 from the cache', async () => {
  const p = on(
    '/cond',
    fixed(200, { 'cache-control': 'max-age=60', etag: '"c1"', 'last-modified': HTTP_DATE(60_000) }),
  );
  await get(p);
  const r = await get(p, { 'if-none-match': 'W/"c1"' });
  assert.equal(r.status, 304);
  assert.equal(r.headers.etag, '"c1"');
  assert.match(String(r.headers['cache-status']), /hit/);
  const ims = await get(p, { 'if-modified-since': HTTP_DATE(0) });
  assert.equal(ims.status, 304);
  const other = await get(p, { 'if-none-match': '"zzz"' });
  assert.equal(other.status, 200);
  assert.equal(count(p), 1);
});

test('stale-while-revalidate: the stale answer at once, one background refresh', async () => {
  let release: () => void = () => {};
  const p = on('/swr', (_req, res, n) => {
    const answer = () => {
      res.writeHead(200, {
        'cache-control': 'max-age=60, stale-while-revalidate=600',
        age: n === 1 ? '100' : '0',
        'content-type': 'text/plain',
      });
      res.end(`v${n}`);
    };
    if (n === 2)
      release = answer; // the refresh waits until the test lets it go
    else answer();
  });
  assert.equal((await get(p)).body, 'v1');
  const stale = await Promise.all([get(p), get(p), get(p)]);
  for (const r of stale) {
    assert.equal(r.body, 'v1');
    assert.match(String(r.headers['cache-status']), /^gatehouse; hit; ttl=-\d+$/);
  }
  await until(() => count(p) === 2, 5000, 'the background refresh');
  release();
  // Once the refresh has landed, the new version is served fresh.
  let fresh: Reply | undefined;
  for (let i = 0; i < 50; i++) {
    fresh = await get(p);
    if (fresh.body === 'v2') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(fresh?.body, 'v2');
  assert.equal(count(p), 2);
});

test('stale-if-error: a 5xx from the origin, or an unreachable origin, is answered with the stale entry', async () => {
  const p = on('/sie', (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, {
        'cache-control': 'max-age=1, stale-if-error=600',
        age: '5',
        'content-type': 'text/plain',
      });
      res.end('good');
    } else {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down');
    }
  });
  await get(p);
  const r = await get(p);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'good');
  assert.match(String(r.headers['cache-status']), /fwd=stale; fwd-status=503; detail=stale-if-error/);
});

test("stale-if-error also covers Gatehouse's own 502 when the upstream has become unreachable", async () => {
  const p = on(
    '/sie-dead',
    fixed(200, { 'cache-control': 'max-age=1, stale-if-error=600', age: '5' }, 'kept'),
  );
  const yaml = (target: string) => `
listeners: [{ name: web, address: "127.0.0.1:0" }]
middlewares: { sc: { cache: {} } }
routes: [{ name: r, match: { pathPrefix: / }, middlewares: [sc], upstream: o }]
upstreams: { o: { targets: [{ url: "${target}" }], retry: { attempts: 1 } } }
`;
  const g = await start(yaml(up.url));
  try {
    assert.equal((await send(`${g.url()}${p}`)).body, 'kept');
    // The same cache (by name) across a reload, now with nothing listening behind it.
    g.gh.reload(testConfig(yaml('http://127.0.0.1:1')));
    const r = await send(`${g.url()}${p}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'kept');
    assert.match(String(r.headers['cache-status']), /fwd=stale; fwd-status=502; detail=stale-if-error/);
    // A path that was never stored gets the plain 502, with its request id.
    const miss = await send(`${g.url()}/never`);
    assert.equal(miss.status, 502);
    assert.ok(miss.headers['x-request-id']);
  } finally {
    await g.close();
  }
});

test('must-revalidate: a stale entry is not served when the origin fails', async () => {
  const p = on('/must-reval', (_req, res, n) => {
    if (n === 1) {
      res.writeHead(200, { 'cache-control': 'max-age=1, must-revalidate, stale-if-error=600', age: '5' });
      res.end('old');
    } else {
      res.writeHead(503);
      res.end('down');
    }
  });
  await get(p);
  const r = await get(p);
  assert.equal(r.status, 503);
});

test('coalescing: concurrent misses make one upstream request and share its answer', async () => {
  const p = on('/slow', (_req, res, n) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      res.end(`slow ${n}`);
    }, 200);
  });
  const replies = await Promise.all(Array.from({ length: 20 }, () => get(p)));
  assert.equal(count(p), 1);
  for (const r of replies) assert.equal(r.body, 'slow 1');
  assert.ok(replies.some((r) => /collapsed|hit/.test(String(r.headers['cache-status']))));
});

test('without coalesce, concurrent misses each go upstream', async () => {
  const p = on('/solo/slow', (_req, res, n) => {
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`solo ${n}`);
    }, 200);
  });
  await Promise.all(Array.from({ length: 5 }, () => get(p)));
  assert.equal(count(p), 5);
});

test('stored while streaming: a second client reads the body along as it arrives', async () => {
  let second: () => void = () => {};
  const half = Buffer.alloc(256 * 1024, 'a');
  const p = on('/stream', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' });
    res.write(half);
    second = () => res.end(Buffer.alloc(256 * 1024, 'b'));
  });
  const firstP = get(p);
  await until(() => count(p) === 1, 5000, 'the first request');
  await new Promise((r) => setTimeout(r, 50));
  const secondP = get(p);
  await new Promise((r) => setTimeout(r, 50));
  second();
  const [a, b] = await Promise.all([firstP, secondP]);
  assert.equal(a.body.length, 512 * 1024);
  assert.equal(b.body, a.body);
  assert.equal(count(p), 1);
  assert.match(String(b.headers['cache-status']), /collapsed/);
});

test('larger than maxObjectSize: streamed through whole, not stored', async () => {
  const big = 'x'.repeat(2 * 1024 * 1024);
  // With a Content-Length the cache knows at once.
  const p = on(
    '/big',
    fixed(200, { 'cache-control': 'max-age=60', 'content-length': String(big.length) }, big),
  );
  const a = await get(p);
  assert.equal(a.body.length, big.length);
  assert.match(String(a.headers['cache-status']), /detail=too-large/);
  await get(p);
  assert.equal(count(p), 2);
  // Chunked: the entry is given up when the count passes the limit, and the client still gets it all.
  const q = on('/big-chunked', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.write(big.slice(0, 1024 * 1024));
    res.end(big.slice(1024 * 1024));
  });
  assert.equal((await get(q)).body, big);
  assert.match(String((await get(q)).headers['cache-status']), /fwd=miss/);
  assert.equal(count(q), 2);
});

test('invalidation: a successful POST removes the target URI and its Location (§4.4)', async () => {
  const p = on('/item', (req, res) => {
    if (req.method === 'POST') {
      res.writeHead(201, { location: '/item-list' });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end('item');
  });
  const list = on('/item-list', fixed(200, { 'cache-control': 'max-age=60' }));
  await get(p);
  await get(list);
  await get(p, {}, 'POST');
  await get(p);
  await get(list);
  assert.equal(count(p), 3); // GET, POST, GET again
  assert.equal(count(list), 2);
  // A failed POST invalidates nothing.
  const keep = on('/keep', (req, res) => {
    res.writeHead(req.method === 'POST' ? 500 : 200, { 'cache-control': 'max-age=60' });
    res.end('keep');
  });
  await get(keep);
  await get(keep, {}, 'POST');
  assert.match(String((await get(keep)).headers['cache-status']), /hit/);
});

test('HEAD is answered from a stored GET', async () => {
  const p = on('/head', fixed(200, { 'cache-control': 'max-age=60' }, 'twelve bytes'));
  await get(p);
  const h = await get(p, {}, 'HEAD');
  assert.equal(h.status, 200);
  assert.equal(h.body, '');
  assert.equal(h.headers['content-length'], '12');
  assert.equal(count(p), 1);
});

test('Range from a stored full response: 206, multipart, 416, and If-Range', async () => {
  // Long enough that two parts plus their multipart heads are smaller than the whole (range.ts).
  const body = `0123456789abcdefghij${'.'.repeat(980)}`;
  const p = on(
    '/range',
    fixed(200, { 'cache-control': 'max-age=60', etag: '"r1"', 'content-type': 'text/plain' }, body),
  );
  await get(p);
  const one = await get(p, { range: 'bytes=2-5' });
  assert.equal(one.status, 206, JSON.stringify(one.headers));
  assert.equal(one.body, '2345');
  assert.equal(one.headers['content-range'], 'bytes 2-5/1000');
  const multi = await get(p, { range: 'bytes=0-1, 10-11' });
  assert.equal(multi.status, 206);
  assert.match(String(multi.headers['content-type']), /^multipart\/byteranges; boundary=/);
  assert.match(multi.body, /Content-Range: bytes 0-1\/1000\r\n\r\n01\r\n/);
  assert.match(multi.body, /Content-Range: bytes 10-11\/1000\r\n\r\nab\r\n/);
  assert.equal(Number(multi.headers['content-length']), Buffer.byteLength(multi.body));
  const bad = await get(p, { range: 'bytes=5000-6000' });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], 'bytes */1000');
  const stale = await get(p, { range: 'bytes=0-3', 'if-range': '"other"' });
  assert.equal(stale.status, 200);
  assert.equal(stale.body, body);
  assert.equal(count(p), 1);
});

test('CDN-Cache-Control is followed ahead of Cache-Control (RFC 9213)', async () => {
  const p = on('/cdn', fixed(200, { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' }));
  await get(p);
  assert.match(String((await get(p)).headers['cache-status']), /hit/);
  assert.equal(count(p), 1);
  const q = on('/cdn-no', fixed(200, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'no-store' }));
  await get(q);
  await get(q);
  assert.equal(count(q), 2);
});

test("Cache-Status appends to the upstream's own (RFC 9211)", async () => {
  const p = on('/chain', fixed(200, { 'cache-control': 'max-age=60', 'cache-status': 'origin-cache; hit' }));
  const a = await get(p);
  assert.equal(a.headers['cache-status'], 'origin-cache; hit, gatehouse; fwd=miss; stored');
  const b = await get(p);
  assert.match(String(b.headers['cache-status']), /^gatehouse; hit/);
});

test('only-if-cached with nothing stored: 504', async () => {
  const r = await get('/never-stored', { 'cache-control': 'only-if-cached' });
  assert.equal(r.status, 504);
  assert.equal(count('/never-stored'), 0);
});

test('purge by URL, prefix and tag; figures in the admin API and /metrics', async () => {
  const admin = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0", token: "0123456789abcdef0123" }
middlewares: { pc: { cache: {} } }
routes: [{ name: r, match: { pathPrefix: / }, middlewares: [pc], upstream: o }]
upstreams: { o: { targets: [{ url: "${up.url}" }] } }
`);
  try {
    on('/p/a', fixed(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'red blue' }));
    on('/p/b', fixed(200, { 'cache-control': 'max-age=60', 'cache-tag': 'green' }));
    on('/q/c', fixed(200, { 'cache-control': 'max-age=60' }));
    const base = admin.url();
    for (const x of ['/p/a', '/p/b', '/q/c']) await send(`${base}${x}`);
    const a = await send(`${base}/p/a`);
    assert.equal(a.headers['surrogate-key'], undefined, 'purge tags are not shown to clients');
    const adminUrl = (admin.gh.admin as { url: string }).url;
    const auth = { authorization: 'Bearer 0123456789abcdef0123', 'content-type': 'application/json' };
    const purge = async (body: unknown) =>
      JSON.parse(
        (
          await send(`${adminUrl}/api/v1/cache/purge`, {
            method: 'POST',
            headers: auth,
            body: JSON.stringify(body),
          })
        ).body,
      );
    const host = new URL(base).host;
    assert.deepEqual(await purge({ tag: 'blue' }), { purged: 1 });
    assert.deepEqual(await purge({ url: `http://${host}/q/c` }), { purged: 1 });
    assert.deepEqual(await purge({ prefix: '/p/' }), { purged: 1 });
    const before = count('/p/a');
    await send(`${base}/p/a`);
    assert.equal(count('/p/a'), before + 1);
    const bad = await send(`${adminUrl}/api/v1/cache/purge`, {
      method: 'POST',
      headers: auth,
      body: '{"url": "nope"}',
    });
    assert.equal(bad.status, 400);
    const noToken = await send(`${adminUrl}/api/v1/cache/purge`, { method: 'POST', body: '{"tag":"x"}' });
    assert.equal(noToken.status, 401);
    const figures = JSON.parse((await send(`${adminUrl}/api/v1/cache`, { headers: auth })).body);
    assert.equal(figures[0].name, 'pc');
    assert.ok(figures[0].hits >= 1 && figures[0].stored >= 3 && figures[0].purged === 3);
    const metrics = (await send(`${adminUrl}/metrics`, { headers: auth })).body;
    assert.match(metrics, /gatehouse_cache_requests_total\{cache="pc",result="hit"\} [1-9]/);
    assert.match(metrics, /gatehouse_cache_objects\{cache="pc"\} \d+/);
    assert.match(metrics, /gatehouse_cache_bytes\{cache="pc"\} [1-9]/);
  } finally {
    await admin.close();
  }
});

test("a reload keeps the cache's contents", async () => {
  const p = on('/reload-kept', fixed(200, { 'cache-control': 'max-age=60' }));
  await get(p);
  gh.gh.reload(gh.gh.plan.config);
  assert.match(String((await get(p)).headers['cache-status']), /hit/);
  assert.equal(count(p), 1);
});
