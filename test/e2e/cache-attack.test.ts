// Attacks on the cache: poisoning through headers the key does not hold, one client's cookie or
// credentials reaching another, key confusion (query, path spellings, Host), purging without the
// token, Range abuse, and only-if-cached. Each answer is checked against an origin that reflects
// what it received and counts its requests.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { parseH1 } from '../helpers/attack.ts';
import { type Running, start, until } from '../helpers/gatehouse.ts';
import { raw, send } from '../helpers/http.ts';
import { type Origin, origin } from '../helpers/origin.ts';

const TOKEN = 'attack-test-admin-token-0123';

type Spec = (req: IncomingMessage, res: ServerResponse, n: number) => void;
const specs = new Map<string, Spec>();
const counts = new Map<string, number>();
/** Requests the origin saw, by path (without the query). */
const count = (path: string) => counts.get(path) ?? 0;
let up: Origin;
let gh: Running;

function on(path: string, spec: Spec): string {
  specs.set(path, spec);
  return path;
}

/** An answer that reflects request headers into the body (as pages that build links do). */
function reflect(names: string[], headers: Record<string, string> = {}): Spec {
  return (req, res, n) => {
    const body = `${names.map((h) => `${h}=${String(req.headers[h] ?? '')}`).join(' ')} n=${n}\n`;
    res.writeHead(200, {
      'cache-control': 'max-age=600',
      'content-type': 'text/plain',
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    });
    res.end(body);
  };
}

before(async () => {
  up = await origin((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const n = count(path) + 1;
    counts.set(path, n);
    const spec = specs.get(path);
    if (spec === undefined) {
      res.writeHead(404, { 'content-length': '0' });
      res.end();
      return;
    }
    spec(req, res, n);
  });
  gh = await start(`
admin: { address: "127.0.0.1:0", token: "${TOKEN}" }
listeners:
  - { name: web, address: "127.0.0.1:0" }
  - { name: behindProxy, address: "127.0.0.1:0", trustedProxies: [127.0.0.1/32] }
middlewares:
  c: { cache: { maxSize: 16mb, maxObjectSize: 1mb } }
routes: [{ name: all, middlewares: [c], upstream: u }]
upstreams: { u: { targets: [{ url: "${up.url}" }] } }
`);
});

after(async () => {
  await gh.close();
  await up.close();
});

const get = (path: string, headers: Record<string, string> = {}, listener?: string, method = 'GET') =>
  send(`${gh.url(listener)}${path}`, { headers, method });

/** A request written byte for byte (a Host or target undici would not send). */
async function rawGet(target: string, host: string, extra = '', listener?: string) {
  return parseH1(
    await raw(
      gh.url(listener),
      `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`,
    ),
  );
}

const adminUrl = () => (gh.gh.admin as { url: string }).url;

// ---------------------------------------------------------------- poisoning through unkeyed headers

test('forwarding headers from an untrusted client never reach the origin, so they cannot poison the entry', async () => {
  const names = ['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded', 'x-real-ip'];
  const p = on('/poison/forwarded', reflect(names));
  const attacker = await get(p, {
    'x-forwarded-host': 'evil.example',
    'x-forwarded-proto': 'gopher',
    'x-forwarded-port': '6666',
    forwarded: 'for=6.6.6.6;host=evil.example;proto=gopher',
    'x-real-ip': '6.6.6.6',
  });
  assert.match(String(attacker.headers['cache-status']), /stored/);
  assert.doesNotMatch(attacker.body, /evil|gopher|6666|6\.6\.6\.6/, 'the origin saw Gatehouse’s values');
  const victim = await get(p);
  assert.match(String(victim.headers['cache-status']), /^gatehouse; hit/);
  assert.equal(victim.body, attacker.body);
  assert.doesNotMatch(victim.body, /evil|gopher|6666|6\.6\.6\.6/);
  assert.equal(count(p), 1);
});

test('a reflected header the origin names in Vary: the poisoned variant reaches only requests with that value', async () => {
  // Behind a trusted proxy X-Forwarded-Host is passed on, so the origin can be told anything. A
  // response that varies on a header Gatehouse writes itself (forwarding, tracing) is not stored at
  // all: what a client sent is not what the origin saw, so no variant could be matched safely.
  const p = on('/poison/vary-xfh', reflect(['x-forwarded-host'], { vary: 'X-Forwarded-Host' }));
  const attacker = await get(p, { 'x-forwarded-host': 'evil.example' }, 'behindProxy');
  assert.match(attacker.body, /x-forwarded-host=evil\.example/);
  assert.match(String(attacker.headers['cache-status']), /fwd=miss; detail=vary-rewritten/);
  const victim = await get(p, {}, 'behindProxy');
  assert.doesNotMatch(victim.body, /evil/);
  assert.match(String(victim.headers['cache-status']), /fwd=miss/);
  const other = await get(p, { 'x-forwarded-host': 'good.example' }, 'behindProxy');
  assert.match(other.body, /x-forwarded-host=good\.example/);

  // Any other header the origin reads, the same way.
  const q = on('/poison/vary-custom', reflect(['x-poison'], { vary: 'Accept-Language, X-Poison' }));
  const evil = await get(q, { 'x-poison': '<script>alert(1)</script>' });
  assert.match(evil.body, /script/);
  const others: Record<string, string>[] = [
    {},
    { 'x-poison': 'harmless' },
    { 'x-poison': '<script>alert(2)</script>' },
  ];
  for (const headers of others) {
    const r = await get(q, headers);
    assert.doesNotMatch(r.body, /alert\(1\)/, JSON.stringify(headers));
  }
  assert.equal(count(q), 4);
});

test('Vary is matched on what the origin was sent: a header Gatehouse replaced cannot select another variant', async () => {
  // One route behind a TLS-terminating proxy (trusted: its X-Forwarded-Proto is passed on) and one
  // listener clients reach directly (untrusted: X-Forwarded-Proto is replaced with "http"). The
  // origin redirects plain HTTP to HTTPS and says Vary: X-Forwarded-Proto.
  const p = on('/poison/vary-proto', (req, res) => {
    const proto = String(req.headers['x-forwarded-proto']);
    const body = proto === 'https' ? 'the secure page\n' : '';
    res.writeHead(proto === 'https' ? 200 : 301, {
      'cache-control': 'max-age=600',
      vary: 'X-Forwarded-Proto',
      ...(proto === 'https' ? {} : { location: `https://shop.example${req.url}` }),
      'content-length': String(body.length),
    });
    res.end(body);
  });
  // The attacker, directly: the origin is told "http" whatever the client claims, and redirects.
  const attacker = await get(p, { 'x-forwarded-proto': 'https' });
  assert.equal(attacker.status, 301);
  // A visitor through the proxy (which sends X-Forwarded-Proto: https) must get the page.
  const visitor = await get(p, { 'x-forwarded-proto': 'https' }, 'behindProxy');
  assert.equal(
    visitor.status,
    200,
    `the visitor got the redirect stored for the attacker (${visitor.headers['cache-status']}): a loop to https`,
  );
  assert.equal(visitor.body, 'the secure page\n');
});

test('the port in Host is part of the key: a Host with another port cannot poison the entry for the real one', async () => {
  // The origin builds absolute links from Host (as frameworks do). RFC 9111 §2: the key is the
  // target URI, and http://h:1337/ is another URI than http://h:<listener port>/.
  const p = on('/poison/host-port', reflect(['host', 'x-forwarded-host']));
  const real = new URL(gh.url()).host;
  const attacker = await rawGet(p, '127.0.0.1:1337');
  assert.equal(attacker.status, 200);
  assert.match(attacker.body, /host=127\.0\.0\.1:1337/);
  const victim = await rawGet(p, real);
  assert.equal(victim.status, 200);
  assert.doesNotMatch(victim.body, /1337/, `the victim got the attacker's entry: ${victim.body.trim()}`);
});

test('an absolute-form target is keyed by its own authority, the one the origin is given', async () => {
  const p = on('/poison/absolute', reflect(['host']));
  const attacker = await rawGet(`http://evil.example${p}`, 'good.example');
  assert.match(attacker.body, /host=evil\.example/);
  const victim = await rawGet(p, 'good.example');
  assert.match(victim.body, /host=good\.example/);
  assert.match(victim.headers['cache-status'], /fwd=miss/);
});

// ---------------------------------------------------------------- one client's answer to another

test('a response with Set-Cookie is never served to another client, even public and with a burst', async () => {
  const p = on('/private/cookie', (req, res, n) => {
    const body = `for ${String(req.headers['x-user'])}\n`;
    res.writeHead(200, {
      'cache-control': 'public, max-age=600',
      'set-cookie': `session=${String(req.headers['x-user'])}-${n}; HttpOnly`,
      'content-length': String(body.length),
    });
    res.end(body);
  });
  const alice = await get(p, { 'x-user': 'alice' });
  assert.match(String(alice.headers['set-cookie']), /^session=alice-1/);
  assert.match(String(alice.headers['cache-status']), /detail=set-cookie/);
  const bob = await get(p, { 'x-user': 'bob' });
  assert.match(String(bob.headers['set-cookie']), /^session=bob-2/);
  assert.equal(bob.body, 'for bob\n');
  // Concurrent requests wait for one fetch (coalescing), then each goes to the origin itself.
  const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
  const burst = await Promise.all(users.map((u) => get(p, { 'x-user': u })));
  burst.forEach((r, i) => {
    assert.equal(r.body, `for ${users[i]}\n`);
    assert.match(String(r.headers['set-cookie']), new RegExp(`^session=${users[i]}-`));
  });
  assert.equal(count(p), 12);
});

test('a 304 with Set-Cookie does not put that cookie into the stored response for others', async () => {
  // The entry is stored without a cookie; a revalidation's 304 carries the requester's session
  // cookie and new freshness. That requester gets the cookie; the next client must not.
  const p = on('/private/cookie-304', (req, res) => {
    if (req.headers['if-none-match'] === '"v1"') {
      res.writeHead(304, {
        'cache-control': 'max-age=600',
        etag: '"v1"',
        'set-cookie': `session=${String(req.headers['x-user'])}; HttpOnly`,
      });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"v1"', 'content-length': '6' });
    res.end('shared');
  });
  const first = await get(p, { 'x-user': 'nobody' });
  assert.match(String(first.headers['cache-status']), /stored/);
  assert.equal(first.headers['set-cookie'], undefined);
  const alice = await get(p, { 'x-user': 'alice' });
  assert.match(String(alice.headers['cache-status']), /fwd-status=304/);
  assert.match(String(alice.headers['set-cookie']), /session=alice/, 'the requester gets its own cookie');
  const bob = await get(p, { 'x-user': 'bob' });
  assert.equal(bob.body, 'shared');
  assert.doesNotMatch(String(bob.headers['set-cookie']), /alice/, "Bob was handed Alice's session cookie");
});

test('Authorization: the answer is not stored for others unless the origin says public', async () => {
  const p = on('/private/auth', (req, res) => {
    const body = `account of ${String(req.headers.authorization ?? 'anonymous')}\n`;
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': String(body.length) });
    res.end(body);
  });
  const alice = await get(p, { authorization: 'Bearer alice' });
  assert.equal(alice.body, 'account of Bearer alice\n');
  assert.match(String(alice.headers['cache-status']), /detail=authorization/);
  const anon = await get(p);
  assert.equal(anon.body, 'account of anonymous\n');
  assert.match(String(anon.headers['cache-status']), /fwd=miss; stored/);
  // Concurrently: the anonymous request may wait on Alice's fetch, never take its answer.
  const q = on('/private/auth-burst', specs.get(p) as Spec);
  const [a, b] = await Promise.all([get(q, { authorization: 'Bearer alice' }), get(q)]);
  assert.equal(a.body, 'account of Bearer alice\n');
  assert.equal(b.body, 'account of anonymous\n');

  const pub = on('/private/auth-public', (req, res) => {
    const body = `catalogue (asked by ${String(req.headers.authorization)})\n`;
    res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-length': String(body.length) });
    res.end(body);
  });
  const stored = await get(pub, { authorization: 'Bearer alice' });
  assert.match(String(stored.headers['cache-status']), /stored/);
  const reused = await get(pub);
  assert.match(String(reused.headers['cache-status']), /^gatehouse; hit/, 'public: the origin allows it');
  assert.equal(count(pub), 1);
});

test('a Vary: * response is never served from the cache', async () => {
  const p = on('/private/vary-star', (_req, res, n) => {
    res.writeHead(200, {
      'cache-control': 'public, max-age=600',
      vary: '*',
      'content-length': String(`n=${n}`.length),
    });
    res.end(`n=${n}`);
  });
  const a = await get(p);
  const b = await get(p);
  assert.equal(a.body, 'n=1');
  assert.equal(b.body, 'n=2');
  for (const r of [a, b]) assert.match(String(r.headers['cache-status']), /fwd=miss; detail=vary-star/);
  const burst = await Promise.all(Array.from({ length: 5 }, () => get(p)));
  assert.equal(new Set(burst.map((r) => r.body)).size, 5, 'each answer its own');
  assert.equal(count(p), 7);
});

test('a client that leaves mid-stream does not cut off the clients reading its answer along', async () => {
  // The first client's request fetches a large answer; a second arrives half way and reads it
  // along. The first then disconnects: the second must still get every byte.
  const size = 1024 * 1024;
  const whole = Buffer.concat([Buffer.alloc(size / 2, 'a'), Buffer.alloc(size / 2, 'b')]);
  let release: () => void = () => {};
  const released = new Promise<void>((r) => {
    release = r;
  });
  let half = false;
  const p = on('/leave/large', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': String(size) });
    res.write(whole.subarray(0, size / 2));
    half = true;
    void released.then(() => res.end(whole.subarray(size / 2)));
  });
  const leaver = new Agent();
  const stayer = new Agent();
  try {
    const first = await request(`${gh.url()}${p}`, { dispatcher: leaver });
    await until(() => half, 10_000, 'half the body');
    const second = await request(`${gh.url()}${p}`, { dispatcher: stayer });
    assert.equal(second.headers['cache-status'], 'gatehouse; fwd=miss; collapsed');
    const body = second.body.arrayBuffer().then(
      (b) => Buffer.from(b),
      (e: Error) => e,
    );
    first.body.destroy();
    await leaver.destroy();
    // Gatehouse has seen the first client go (its log line) before the rest of the body arrives.
    await until(
      () => gh.log.entries().some((e) => e.path === p && e.reason === 'client_closed'),
      10_000,
      'the first request logged as closed by the client',
    );
    release();
    const got = await body;
    assert.ok(Buffer.isBuffer(got), `the second client was cut off: ${String(got)}`);
    assert.ok(got.equals(whole));
  } finally {
    release();
    await stayer.close();
  }
});

// ---------------------------------------------------------------- key confusion

test('the query is in the key: /a?x=1 never gets the entry of /a, nor /a%3Fx=1 that of /a?x=1', async () => {
  const p = on('/key/a', (req, res) => {
    const body = `url=${req.url}\n`;
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': String(body.length) });
    res.end(body);
  });
  on('/key/a%3Fx=1', specs.get(p) as Spec);
  assert.equal((await get(p)).body, 'url=/key/a\n');
  for (const target of ['/key/a?x=1', '/key/a?x=2', '/key/a?x=1&y=2', '/key/a?y=2&x=1']) {
    const r = await get(target);
    assert.equal(r.body, `url=${target}\n`, target);
    assert.match(String(r.headers['cache-status']), /fwd=miss/, target);
  }
  const encoded = await get('/key/a%3Fx=1');
  assert.equal(encoded.body, 'url=/key/a%3Fx=1\n');
  assert.equal((await get('/key/a?x=1')).body, 'url=/key/a?x=1\n');
  assert.equal((await get(p)).body, 'url=/key/a\n');
});

test('paths are normalised before the cache: /n/../b, /%62, //b and /./b share the entry of /b', async () => {
  const p = on('/norm/b', (req, res) => {
    const body = `url=${req.url}\n`;
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': String(body.length) });
    res.end(body);
  });
  const first = await rawGet('/norm/b', 'cache.example');
  assert.equal(first.body, 'url=/norm/b\n');
  for (const target of ['/norm/x/../b', '/norm/%62', '/norm//b', '/norm/./b', '/%6Eorm/b']) {
    const r = await rawGet(target, 'cache.example');
    assert.equal(r.status, 200, target);
    assert.equal(r.body, 'url=/norm/b\n', target);
    assert.match(r.headers['cache-status'], /^gatehouse; hit/, target);
  }
  // And the other way round: a spelling stored first is what /b gets.
  const q = on('/norm/c', specs.get(p) as Spec);
  assert.equal((await rawGet('/norm/x/../c', 'cache.example')).body, 'url=/norm/c\n');
  assert.match((await rawGet(q, 'cache.example')).headers['cache-status'], /^gatehouse; hit/);
  assert.equal(count(p), 1);
  assert.equal(count(q), 1);
  // Encoded slashes are refused, not cached under either reading.
  const slash = await rawGet('/norm/x%2F..%2Fb', 'cache.example');
  assert.equal(slash.status, 400);
});

test('a HEAD miss stores nothing: a later GET gets the whole body', async () => {
  const p = on('/key/head-first', (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': '11' });
    res.end(req.method === 'HEAD' ? undefined : 'whole body\n');
  });
  const h = await get(p, {}, undefined, 'HEAD');
  assert.equal(h.status, 200);
  assert.equal(h.body, '');
  const g = await get(p);
  assert.equal(g.body, 'whole body\n');
  assert.equal((await get(p)).body, 'whole body\n');
});

// ---------------------------------------------------------------- admin, Range, only-if-cached

test('a purge without the admin token is refused and removes nothing', async () => {
  const p = on('/admin/kept', reflect([]));
  await get(p);
  const url = `${adminUrl()}/api/v1/cache/purge`;
  const body = JSON.stringify({ prefix: '/' });
  const json = { 'content-type': 'application/json' };
  for (const headers of [
    json,
    { ...json, authorization: 'Bearer wrong-token-wrong-token' },
    { ...json, authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
    { ...json, authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    { ...json, cookie: 'gatehouse_session=forged' },
  ]) {
    const r = await send(url, { method: 'POST', headers, body });
    assert.ok(r.status === 401 || r.status === 403, `${JSON.stringify(headers)}: ${r.status}`);
    assert.doesNotMatch(r.body, /purged/);
  }
  assert.equal((await send(`${adminUrl()}/api/v1/cache`)).status, 401, 'the figures need the token too');
  assert.match(String((await get(p)).headers['cache-status']), /^gatehouse; hit/, 'still stored');
  assert.equal(count(p), 1);
});

test('Range abuse: many parts, overlapping parts, a huge header: never more than the body', async () => {
  const size = 10_000;
  const full = Buffer.alloc(size, 'abcdefghijklmnopqrstuvwxyz').toString();
  const p = on('/range/doc', (_req, res) => {
    res.writeHead(200, {
      'cache-control': 'max-age=600',
      'content-type': 'text/plain',
      'content-length': String(size),
    });
    res.end(full);
  });
  await get(p);
  const asked = async (range: string) => {
    const r = await get(p, { range });
    assert.ok(r.status === 200 || r.status === 206 || r.status === 416 || r.status === 431, `${r.status}`);
    assert.ok(
      r.body.length <= size + 2048,
      `${range.slice(0, 40)}…: ${r.body.length} bytes for a ${size}-byte body`,
    );
    return r;
  };
  // 2,000 one-byte ranges: ignored, the whole body once.
  const many = await asked(`bytes=${Array.from({ length: 2000 }, (_, i) => `${i * 2}-${i * 2}`).join(',')}`);
  if (many.status === 200) assert.equal(many.body, full);
  // The same range over and over: coalesced into one.
  const same = await asked(`bytes=${Array.from({ length: 16 }, () => '0-').join(',')}`);
  assert.equal(same.status, 206);
  assert.equal(same.body, full);
  // Overlapping ranges CVE-2011-3192 style.
  await asked(`bytes=0-,${Array.from({ length: 15 }, (_, i) => `${i}-${size - 1}`).join(',')}`);
  // 16 small ranges far apart: a multipart answer, bounded by the parts and their framing.
  const spaced = await asked(
    `bytes=${Array.from({ length: 16 }, (_, i) => `${i * 600}-${i * 600 + 9}`).join(',')}`,
  );
  assert.equal(spaced.status, 206);
  assert.match(String(spaced.headers['content-type']), /^multipart\/byteranges/);
  // Tiny ranges whose framing would exceed the body: the whole body instead.
  const tiny = await asked(`bytes=${Array.from({ length: 16 }, (_, i) => `${i * 3}-${i * 3}`).join(',')}`);
  assert.ok(tiny.body.length <= size);
  assert.equal(count(p), 1, 'all from the store');
});

test('a 206 from the origin is never stored: a Range miss is followed by whole answers', async () => {
  const body = 'the whole representation, not a part of it\n';
  const p = on('/range/origin', (req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
    if (m !== null) {
      const part = body.slice(Number(m[1]), Number(m[2]) + 1);
      res.writeHead(206, {
        'cache-control': 'max-age=600',
        'content-range': `bytes ${m[1]}-${m[2]}/${body.length}`,
        'content-length': String(part.length),
      });
      res.end(part);
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': String(body.length) });
    res.end(body);
  });
  const part = await get(p, { range: 'bytes=0-8' });
  assert.equal(part.status, 206);
  assert.equal(part.body, body.slice(0, 9));
  const whole = await get(p);
  assert.equal(whole.status, 200);
  assert.equal(whole.body, body);
  const again = await get(p);
  assert.match(String(again.headers['cache-status']), /^gatehouse; hit/);
  assert.equal(again.body, body);
});

test('only-if-cached: 504 with nothing stored or only a stale entry, and the origin is not asked', async () => {
  const none = on('/oic/none', reflect([]));
  const r = await get(none, { 'cache-control': 'only-if-cached' });
  assert.equal(r.status, 504);
  assert.equal(count(none), 0);
  const stale = on('/oic/stale', (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"s"', 'content-length': '5' });
    res.end('stale');
  });
  await get(stale);
  const s = await get(stale, { 'cache-control': 'only-if-cached' });
  assert.equal(s.status, 504);
  assert.equal(count(stale), 1);
  const fresh = on('/oic/fresh', reflect([]));
  await get(fresh);
  const f = await get(fresh, { 'cache-control': 'only-if-cached' });
  assert.equal(f.status, 200);
  assert.match(String(f.headers['cache-status']), /^gatehouse; hit/);
  assert.equal(count(fresh), 1);
});
