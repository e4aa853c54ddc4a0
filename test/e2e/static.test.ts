// `static` routes end to end (docs/static.md): a real Gatehouse serving a temporary tree to real
// clients on HTTP/1.1 (node:http, and raw sockets where the client must not normalise the path),
// HTTP/2 over h2c and, with openssl, over TLS. Every rule of the handler has a test here:
// path mapping, index and directory redirects, dotfiles, traversal by any encoding or symlink,
// types, validators and the four preconditions, single and multipart ranges, precompressed
// siblings, the SPA fallback, methods, streaming of large files, descriptors never leaked, and the
// route combined with the compress and headers middlewares. GATEHOUSE_TEST_ENGINE=node runs the
// HTTP/1.1 listener on node:http instead of our engine.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { type ClientHttp2Session, connect as connectH2 } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { Client } from 'undici';
import { compileStatic } from '../../src/static/serve.ts';
import { makeCA, makeCert, tempDir } from '../helpers/certs.ts';
import { type Running, start, until } from '../helpers/gatehouse.ts';
import { raw } from '../helpers/http.ts';
import { hasCommand } from '../helpers/require.ts';

// ---- the tree

const BASE = mkdtempSync(join(tmpdir(), 'gatehouse-static-'));
const ROOT = join(BASE, 'www');
const SPA = join(BASE, 'spa');
/** Outside the root, next to it: what every traversal attempt aims at. */
const SECRET = 'TOP-SECRET-OUTSIDE-ROOT';
/** All files get this mtime (more than a second ago: Last-Modified is a strong validator). */
const MTIME = new Date('2024-03-04T05:06:07Z');
const LAST_MODIFIED = 'Mon, 04 Mar 2024 05:06:07 GMT';

function prose(bytes: number, seed: number): Buffer {
  const words = ['gatehouse', 'static', 'file', 'root', 'index', 'range', 'etag', 'the', 'a', 'of'];
  let s = '';
  let x = seed;
  while (s.length < bytes) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += `${words[x % words.length]} ${x % 977} `;
    if (x % 13 === 0) s += '\n';
  }
  return Buffer.from(s.slice(0, bytes));
}

const HELLO = Buffer.from('hello, static world\n');
const INDEX = Buffer.from('<!doctype html><title>root index</title>\n');
const SUB_INDEX = Buffer.from('<!doctype html><title>sub index</title>\n');
const SPA_INDEX = Buffer.from('<!doctype html><title>spa shell</title>\n');
const APP_JS = prose(6000, 1);
const APP_BR = zlib.brotliCompressSync(APP_JS);
const APP_GZ = zlib.gzipSync(APP_JS);
const APP_ZST = zlib.zstdCompressSync(APP_JS);
const TEXT = prose(8000, 2); // small: read whole, one write
const MID = randomBytes(200 * 1024); // streamed (over 64 KiB)
const PROSE_BIG = prose(300_000, 3); // streamed through the compressor
const BIG = randomBytes(5 * 1024 * 1024);

const files: Record<string, Buffer | string> = {
  'index.html': INDEX,
  'hello.txt': HELLO,
  'style.css': 'body { color: red }\n',
  'data.json': '{"a":1}\n',
  'pixel.png': randomBytes(64),
  README: 'no extension\n',
  'app.js': APP_JS,
  'app.js.br': APP_BR,
  'app.js.gz': APP_GZ,
  'app.js.zst': APP_ZST,
  'only-gz.css': TEXT,
  'only-gz.css.gz': zlib.gzipSync(TEXT),
  'stale.js': TEXT,
  'stale.js.gz': zlib.gzipSync(Buffer.from('an old version')),
  'text.txt': TEXT,
  'mid.bin': MID,
  'prose.txt': PROSE_BIG,
  'big.bin': BIG,
  'empty.txt': '',
  'name with space.txt': 'spaced\n',
  'été.txt': 'accented\n',
  '%2e%2e': 'a file literally named %2e%2e\n',
  'sub/index.html': SUB_INDEX,
  'sub/.hidden': 'hidden in sub\n',
  'noindex/file.txt': 'in a directory without index\n',
  '.env': 'SECRET_KEY=dotenv\n',
  '.git/config': '[core] dotgit\n',
  '.well-known/x': 'well known\n',
  '.well-known/.secret': 'dot inside well-known\n',
};

function sha(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

function makeTree(): void {
  mkdirSync(ROOT, { recursive: true });
  mkdirSync(SPA, { recursive: true });
  writeFileSync(join(BASE, 'secret.txt'), SECRET);
  mkdirSync(join(BASE, 'outside-dir'));
  writeFileSync(join(BASE, 'outside-dir', 'secret.txt'), SECRET);
  for (const [name, content] of Object.entries(files)) {
    const p = join(ROOT, name);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, content);
    utimesSync(p, MTIME, MTIME);
  }
  // The stale sibling is older than its file: never served.
  const old = new Date(MTIME.getTime() - 3600_000);
  utimesSync(join(ROOT, 'stale.js.gz'), old, old);
  // Symlinks: out of the root (file and directory), inside it, to a dotfile, and a loop.
  symlinkSync(join(BASE, 'secret.txt'), join(ROOT, 'link-out.txt'));
  symlinkSync(join(BASE, 'outside-dir'), join(ROOT, 'link-dir-out'));
  symlinkSync('../secret.txt', join(ROOT, 'sub', 'relative-out.txt'));
  symlinkSync('hello.txt', join(ROOT, 'link-in.txt'));
  symlinkSync('sub', join(ROOT, 'link-sub'));
  symlinkSync('.git/config', join(ROOT, 'link-dot.txt'));
  symlinkSync('loop-b', join(ROOT, 'loop-a'));
  symlinkSync('loop-a', join(ROOT, 'loop-b'));
  // SPA
  writeFileSync(join(SPA, 'index.html'), SPA_INDEX);
  writeFileSync(join(SPA, 'real.txt'), 'a real file\n');
  mkdirSync(join(SPA, 'assets'));
  writeFileSync(join(SPA, 'assets', 'app.js'), 'console.log(1)\n');
}

// ---- clients

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** HTTP/1.1 through node:http (one connection per request). */
function get(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  listener = 'plain',
): Promise<Got> {
  const u = new URL(gh.url(listener));
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, path, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  text: string;
}

/** The request line as written, on a raw socket: nothing normalises the path on the way. */
async function rawGet(target: string, extra = '', method = 'GET'): Promise<RawReply> {
  const text = await raw(
    gh.url('plain'),
    `${method} ${target} HTTP/1.1\r\nHost: static.test\r\nConnection: close\r\n${extra}\r\n`,
  );
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no response head for ${target}: ${JSON.stringify(text.slice(0, 200))}`);
  const lines = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(lines[0].split(' ')[1]), headers, body: text.slice(end + 4), text };
}

function h2(listener: 'h2c' | 'tls'): ClientHttp2Session {
  const s =
    listener === 'tls'
      ? connectH2(gh.url('tls'), { ca, servername: 'static.test' })
      : connectH2(gh.url('h2c'));
  s.on('error', () => {});
  return s;
}

function h2get(
  session: ClientHttp2Session,
  path: string,
  headers: Record<string, string> = {},
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': 'GET', ':path': path, ':authority': 'static.test', ...headers });
    const chunks: Buffer[] = [];
    let head: IncomingHttpHeaders = {};
    s.on('response', (h) => {
      head = h as IncomingHttpHeaders;
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () =>
      resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }),
    );
    s.on('error', reject);
    s.end();
  });
}

/** The parts of a multipart/byteranges body. */
function parseMultipart(
  contentType: string,
  body: Buffer,
): { headers: Record<string, string>; data: Buffer }[] {
  const m = /boundary=("?)([^";]+)\1/.exec(contentType);
  assert.ok(m, `no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${m[2]}`);
  const parts: { headers: Record<string, string>; data: Buffer }[] = [];
  let at = body.indexOf(delimiter);
  assert.equal(at, 0, 'the body starts with the first delimiter');
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString() === '--') {
      assert.equal(body.subarray(at).toString(), '--\r\n', 'the close-delimiter ends the body');
      break;
    }
    assert.equal(body.subarray(at, at + 2).toString(), '\r\n');
    const headEnd: number = body.indexOf('\r\n\r\n', at);
    const headers: Record<string, string> = {};
    for (const l of body
      .subarray(at + 2, headEnd)
      .toString('latin1')
      .split('\r\n')) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const next: number = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headEnd + 4);
    assert.ok(next > 0, 'every part is followed by a delimiter');
    parts.push({ headers, data: body.subarray(headEnd + 4, next) });
    at = next + 2;
  }
  return parts;
}

const ETAG = /^"[0-9a-f]+-[0-9a-f]+"$/;

let gh: Running;
let ca: string | undefined;

before(async () => {
  makeTree();
  let tls = '';
  if (hasCommand('openssl')) {
    const dir = tempDir();
    const authority = makeCA(dir);
    const cert = makeCert(dir, authority, 'static.test', ['static.test']);
    ca = authority.cert;
    tls = `
  - name: tls
    address: 127.0.0.1:0
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }] }`;
  }
  gh = await start(`
listeners:
  - { name: plain, address: 127.0.0.1:0 }
  - { name: h2c, address: 127.0.0.1:0, h2c: true }${tls}
middlewares:
  gz: { compress: {} }
  hdr: { headers: { response: { set: { x-static: "yes" } } } }
routes:
  - { name: dots, match: { pathPrefix: /dots }, stripPrefix: true, static: { root: "${ROOT}", dotfiles: true } }
  - { name: spa, match: { pathPrefix: /spa }, stripPrefix: true, static: { root: "${SPA}", spaFallback: true } }
  - { name: noidx, match: { pathPrefix: /noidx }, stripPrefix: true, static: { root: "${ROOT}", index: false } }
  - name: enc
    match: { pathPrefix: /enc }
    stripPrefix: true
    allowEncodedSlashes: true
    static: { root: "${ROOT}" }
  - { name: z, match: { pathPrefix: /z }, stripPrefix: true, middlewares: [gz], static: { root: "${ROOT}" } }
  - name: zp
    match: { pathPrefix: /zp }
    stripPrefix: true
    middlewares: [gz]
    static: { root: "${ROOT}", precompressed: true }
  - { name: h, match: { pathPrefix: /h }, stripPrefix: true, middlewares: [hdr], static: { root: "${ROOT}" } }
  - name: rw
    match: { pathPrefix: /rw }
    rewrite: { regex: "^/rw/(.*)$", replacement: "/sub/$1" }
    static: { root: "${ROOT}" }
  - { name: main, static: { root: "${ROOT}", precompressed: true, maxAge: 60s } }
`);
});

after(async () => {
  await gh?.close();
  try {
    chmodSync(join(ROOT, 'noread.txt'), 0o644);
  } catch {}
  rmSync(BASE, { recursive: true, force: true });
});

// ---- files, types, headers

describe('files', () => {
  test('a file: its bytes, Content-Type, Content-Length, validators, Accept-Ranges, nosniff, Cache-Control', async () => {
    const r = await get('/hello.txt');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, HELLO);
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(r.headers['content-length'], String(HELLO.length));
    assert.match(String(r.headers.etag), ETAG);
    assert.equal(r.headers['last-modified'], LAST_MODIFIED);
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['cache-control'], 'max-age=60');
    assert.equal(r.headers.vary, 'Accept-Encoding', 'precompressed is on for this route');
    assert.equal(r.headers['content-encoding'], undefined);
    assert.ok(r.headers['x-request-id']);
  });

  test('Content-Type from the type table; text types in UTF-8; unknown is application/octet-stream', async () => {
    const cases: [string, string][] = [
      ['/index.html', 'text/html; charset=utf-8'],
      ['/style.css', 'text/css; charset=utf-8'],
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/data.json', 'application/json; charset=utf-8'],
      ['/pixel.png', 'image/png'],
      ['/mid.bin', 'application/octet-stream'],
      ['/README', 'application/octet-stream'],
    ];
    for (const [path, type] of cases) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['content-type'], type, path);
    }
  });

  test('without maxAge no Cache-Control; without precompressed no Vary', async () => {
    const r = await get('/h/hello.txt');
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], undefined);
    assert.equal(r.headers.vary, undefined);
  });

  test('an empty file is 200 with Content-Length: 0', async () => {
    const r = await get('/empty.txt');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '0');
    assert.equal(r.body.length, 0);
  });

  test('percent-encoded names are decoded once, as UTF-8', async () => {
    assert.equal((await get('/name%20with%20space.txt')).body.toString(), 'spaced\n');
    assert.equal((await get('/%C3%A9t%C3%A9.txt')).body.toString(), 'accented\n');
    // %25 is '%': the name on disk is "%2e%2e", a file like any other, never "..".
    assert.equal((await get('/%252e%252e')).body.toString(), 'a file literally named %2e%2e\n');
  });

  test('HEAD: the headers a GET gets, no body, no read', async () => {
    const g = await rawGet('/text.txt');
    const h = await rawGet('/text.txt', '', 'HEAD');
    assert.equal(h.status, 200);
    assert.equal(h.body, '', 'no body after the head');
    for (const name of [
      'content-type',
      'content-length',
      'etag',
      'last-modified',
      'accept-ranges',
      'cache-control',
    ])
      assert.equal(h.headers[name], g.headers[name], name);
    assert.equal(h.headers['content-length'], String(TEXT.length));
    // A large file too (HEAD never streams).
    const big = await rawGet('/big.bin', '', 'HEAD');
    assert.equal(big.headers['content-length'], String(BIG.length));
    assert.equal(big.body, '');
    // Range is ignored on HEAD (RFC 9110 §14.2: GET only).
    const hr = await rawGet('/text.txt', 'Range: bytes=0-9\r\n', 'HEAD');
    assert.equal(hr.status, 200);
  });

  test('the access log records the bytes sent', async () => {
    const before = gh.log.lines.length;
    await get('/text.txt?logged=1');
    await until(() => gh.log.lines.length > before);
    const e = gh.log
      .entries()
      .slice(before)
      .find((x) => String(x.path) === '/text.txt');
    assert.ok(e);
    assert.equal(e.status, 200);
    assert.equal(e.bytes, TEXT.length);
  });
});

// ---- directories

describe('directories', () => {
  test('a directory without its slash is 301 to the path with one, query kept', async () => {
    const r = await get('/sub?x=1&y=2');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/sub/?x=1&y=2');
    const root = await get('/dots');
    assert.equal(root.status, 301);
    assert.equal(root.headers.location, '/dots/', 'the client’s own path, prefix included');
    const linked = await get('/link-sub');
    assert.equal(linked.status, 301, 'a symlink to a directory inside the root is a directory');
  });

  test('with its slash: the index file; the root too', async () => {
    const sub = await get('/sub/');
    assert.equal(sub.status, 200);
    assert.deepEqual(sub.body, SUB_INDEX);
    assert.equal(sub.headers['content-type'], 'text/html; charset=utf-8');
    const root = await get('/');
    assert.deepEqual(root.body, INDEX);
    assert.deepEqual((await get('/link-sub/')).body, SUB_INDEX);
  });

  test('no directory listing: a directory without index file is 404, and with index: false every directory', async () => {
    const r = await get('/noindex/');
    assert.equal(r.status, 404);
    assert.doesNotMatch(r.body.toString(), /file\.txt/);
    assert.equal(
      (await get('/noidx/sub')).status,
      404,
      'no redirect to a directory that has nothing to show',
    );
    const off = await get('/noidx/sub/');
    assert.equal(off.status, 404);
    assert.doesNotMatch(off.body.toString(), /index\.html/);
    assert.equal((await get('/noidx/hello.txt')).status, 200, 'files are still served');
  });

  test('rewrite maps the path: /rw/x is sub/x', async () => {
    const r = await get('/rw/index.html');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, SUB_INDEX);
  });

  test('missing files are 404, with no filesystem path in the answer', async () => {
    for (const p of ['/nope.txt', '/nope/', '/sub/nope.html', '/hello.txt/', '/hello.txt/x']) {
      const r = await get(p, { accept: 'application/json' });
      assert.equal(r.status, 404, p);
      assert.equal(JSON.parse(r.body.toString()).reason, 'file_not_found');
      assert.ok(!r.body.toString().includes(BASE), 'no path in the answer');
    }
  });
});

// ---- nothing outside the root, no dotfiles

describe('traversal', () => {
  // Each target as written on the wire, and the status it gets. 400: refused by the path
  // normaliser (dot segments above the root, encoded slashes, backslashes); 404: reaches the static
  // handler, which finds nothing by that name; 400 from the handler: not UTF-8.
  const attempts: [string, number][] = [
    ['/../secret.txt', 400],
    ['/../../../../../../etc/passwd', 400],
    ['/sub/../../secret.txt', 400],
    ['/%2e%2e/secret.txt', 400],
    ['/%2E%2E/secret.txt', 400],
    ['/.%2e/secret.txt', 400],
    ['/%2e./secret.txt', 400],
    ['/%2e%2e%2fsecret.txt', 400],
    ['/..%2fsecret.txt', 400],
    ['/..%2Fsecret.txt', 400],
    ['/..\\secret.txt', 400],
    ['/..%5csecret.txt', 400],
    ['/%5c..%5csecret.txt', 400],
    ['/%252e%252e/secret.txt', 404],
    ['/%252e%252e%252fsecret.txt', 404],
    ['/hello.txt%00', 404],
    ['/secret.txt%00.html', 404],
    ['/%00/../secret.txt', 404],
    ['/%c0%ae%c0%ae/secret.txt', 400],
    ['/%c0%ae%c0%ae%c0%afsecret.txt', 400],
    ['/%e0%80%ae%e0%80%ae/secret.txt', 400],
    ['/%ff/secret.txt', 400],
    ['/%2', 400],
    ['/%zz', 400],
    // allowEncodedSlashes: the encoded slash reaches the handler, whose decoded segment holds it
    ['/enc/..%2fsecret.txt', 404],
    ['/enc/..%2f..%2fetc%2fpasswd', 404],
    ['/enc/%2e%2e%2fsecret.txt', 404],
    ['/enc/..%5csecret.txt', 404],
    ['/enc/%2fetc%2fpasswd', 404],
    ['/enc/sub%2f..%2f..%2fsecret.txt', 404],
  ];

  for (const [target, status] of attempts) {
    test(`${target} → ${status}`, async () => {
      const r = await rawGet(target);
      assert.equal(r.status, status, r.text.slice(0, 300));
      assert.ok(!r.text.includes(SECRET), 'the secret never leaks');
      assert.ok(!r.text.includes('root:x:0'), 'nor /etc/passwd');
      assert.ok(!r.text.includes(BASE), 'nor a filesystem path');
    });
  }

  test('absolute-form targets are mapped the same way', async () => {
    const r = await rawGet('http://static.test/../secret.txt');
    assert.ok(r.status === 400 || r.status === 404, String(r.status));
    assert.ok(!r.text.includes(SECRET));
  });

  test('symlinks: out of the root 404 (file, directory, relative), inside it served, loops 404', async () => {
    for (const p of [
      '/link-out.txt',
      '/link-dir-out/secret.txt',
      '/link-dir-out/',
      '/sub/relative-out.txt',
    ]) {
      const r = await rawGet(p);
      assert.equal(r.status, 404, p);
      assert.ok(!r.text.includes(SECRET), p);
    }
    const inside = await get('/link-in.txt');
    assert.equal(inside.status, 200);
    assert.deepEqual(inside.body, HELLO);
    assert.equal(inside.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal((await get('/loop-a')).status, 404);
  });

  test('a symlink to a dotfile is a dotfile: 404 unless dotfiles', async () => {
    assert.equal((await get('/link-dot.txt')).status, 404);
    const r = await get('/dots/link-dot.txt');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), '[core] dotgit\n');
  });

  test('dotfiles are 404, whatever the case or encoding; .well-known is served', async () => {
    for (const p of [
      '/.env',
      '/.git/config',
      '/.git/',
      '/.git',
      '/.GIT/config',
      '/.Env',
      '/.ENV',
      '/%2eenv',
      '/%2Egit/config',
      '/sub/.hidden',
      '/.well-known/.secret',
      '/enc/%2eenv',
    ]) {
      const r = await rawGet(p);
      assert.equal(r.status, 404, p);
      assert.ok(!r.text.includes('dotenv') && !r.text.includes('dotgit') && !r.text.includes('hidden in'), p);
    }
    const wk = await get('/.well-known/x');
    assert.equal(wk.status, 200);
    assert.equal(wk.body.toString(), 'well known\n');
  });

  test('dotfiles: true serves them', async () => {
    assert.equal((await get('/dots/.env')).body.toString(), 'SECRET_KEY=dotenv\n');
    assert.equal((await get('/dots/.git/config')).body.toString(), '[core] dotgit\n');
    assert.equal((await get('/dots/sub/.hidden')).status, 200);
    assert.equal((await get('/dots/.well-known/.secret')).status, 200);
    // ... but never outside the root.
    assert.equal((await rawGet('/dots/link-out.txt')).status, 404);
  });

  test('not a regular file (a FIFO): 404 at once, nothing blocks', async (t) => {
    if (!hasCommand('mkfifo')) return t.skip('needs mkfifo');
    const fifo = join(ROOT, 'pipe');
    if (!existsSync(fifo)) execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    assert.equal((await get('/pipe')).status, 404);
    assert.ok(Date.now() - started < 2000);
    assert.equal((await get('/hello.txt')).status, 200, 'still serving');
  });

  test('a file or directory it may not read is 403, with nothing of it in the answer', async (t) => {
    if (process.getuid?.() !== 0) {
      const p = join(ROOT, 'noread.txt');
      writeFileSync(p, 'unreadable');
      chmodSync(p, 0o000);
      const r = await get('/noread.txt');
      assert.equal(r.status, 403);
      assert.doesNotMatch(r.body.toString(), /unreadable/);
      return;
    }
    // Root reads everything: a Gatehouse of its own, in a child process running as nobody.
    let nobody: number;
    try {
      nobody = Number(execFileSync('id', ['-u', 'nobody']).toString().trim());
    } catch {
      return t.skip('running as root and there is no user nobody to drop to');
    }
    const dir = join(tmpdir(), `gatehouse-static-perm-${process.pid}`);
    mkdirSync(join(dir, 'www', 'private'), { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'www'), 0o755);
    writeFileSync(join(dir, 'www', 'ok.txt'), 'readable', { mode: 0o644 });
    writeFileSync(join(dir, 'www', 'noread.txt'), 'unreadable', { mode: 0o600 });
    writeFileSync(join(dir, 'www', 'private', 'x.txt'), 'unreadable', { mode: 0o644 });
    chmodSync(join(dir, 'www', 'private'), 0o700);
    const helper = new URL('../helpers/gatehouse.ts', import.meta.url).pathname;
    const script = join(dir, 'child.mts');
    writeFileSync(
      script,
      `import { start } from ${JSON.stringify(helper)};
const gh = await start(\`
listeners: [{ name: web, address: 127.0.0.1:0 }]
routes: [{ name: files, static: { root: ${JSON.stringify(join(dir, 'www'))} } }]
\`);
const out = {};
for (const p of ['/ok.txt', '/noread.txt', '/private/x.txt', '/private/']) {
  const r = await fetch(gh.url() + p);
  out[p] = { status: r.status, body: await r.text() };
}
await gh.close();
console.log(JSON.stringify(out));
`,
      { mode: 0o644 },
    );
    try {
      const text = execFileSync(process.execPath, [script], {
        uid: nobody,
        gid: nobody,
        cwd: dir,
        env: { ...process.env, HOME: dir },
        timeout: 30_000,
      }).toString();
      const out = JSON.parse(text.trim().split('\n').pop() as string) as Record<
        string,
        { status: number; body: string }
      >;
      assert.equal(out['/ok.txt'].status, 200);
      assert.equal(out['/ok.txt'].body, 'readable');
      for (const p of ['/noread.txt', '/private/x.txt', '/private/']) {
        assert.equal(out[p].status, 403, p);
        assert.doesNotMatch(out[p].body, /unreadable/, p);
        assert.ok(!out[p].body.includes(dir), p);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- preconditions

describe('conditional requests', () => {
  test('If-None-Match: 304 with the validators and no body; weak comparison; another tag is 200', async () => {
    const first = await get('/text.txt');
    const etag = String(first.headers.etag);
    const r = await rawGet('/text.txt', `If-None-Match: ${etag}\r\n`);
    assert.equal(r.status, 304);
    assert.equal(r.body, '');
    assert.equal(r.headers.etag, etag);
    assert.equal(r.headers['last-modified'], LAST_MODIFIED);
    assert.equal(r.headers['cache-control'], 'max-age=60');
    assert.equal(r.headers.vary, 'Accept-Encoding');
    assert.equal((await get('/text.txt', { 'if-none-match': `W/${etag}` })).status, 304);
    assert.equal((await get('/text.txt', { 'if-none-match': `"x", ${etag}` })).status, 304);
    assert.equal((await get('/text.txt', { 'if-none-match': '*' })).status, 304);
    assert.equal((await get('/text.txt', { 'if-none-match': '"other"' })).status, 200);
    // HEAD too.
    assert.equal((await rawGet('/text.txt', `If-None-Match: ${etag}\r\n`, 'HEAD')).status, 304);
  });

  test('If-Modified-Since: 304 when not modified since, 200 when modified; ignored with If-None-Match', async () => {
    const r = await rawGet('/text.txt', `If-Modified-Since: ${LAST_MODIFIED}\r\n`);
    assert.equal(r.status, 304);
    assert.equal(r.body, '');
    assert.equal(
      (await get('/text.txt', { 'if-modified-since': 'Tue, 05 Mar 2024 00:00:00 GMT' })).status,
      304,
    );
    assert.equal(
      (await get('/text.txt', { 'if-modified-since': 'Sun, 03 Mar 2024 00:00:00 GMT' })).status,
      200,
    );
    assert.equal((await get('/text.txt', { 'if-modified-since': 'not a date' })).status, 200);
    const both = await get('/text.txt', { 'if-none-match': '"other"', 'if-modified-since': LAST_MODIFIED });
    assert.equal(both.status, 200);
  });

  test('If-Match: 412 when no tag matches (strong comparison), 200 when one does', async () => {
    const etag = String((await get('/text.txt')).headers.etag);
    const r = await get('/text.txt', { 'if-match': '"nope"' });
    assert.equal(r.status, 412);
    assert.equal(r.body.length, 0);
    assert.equal((await get('/text.txt', { 'if-match': `W/${etag}` })).status, 412, 'weak never matches');
    assert.equal((await get('/text.txt', { 'if-match': etag })).status, 200);
    assert.equal((await get('/text.txt', { 'if-match': '*' })).status, 200);
  });

  test('If-Unmodified-Since: 412 when modified since, 200 when not', async () => {
    assert.equal(
      (await get('/text.txt', { 'if-unmodified-since': 'Sun, 03 Mar 2024 00:00:00 GMT' })).status,
      412,
    );
    assert.equal((await get('/text.txt', { 'if-unmodified-since': LAST_MODIFIED })).status, 200);
  });

  test('a changed file gets a new ETag and Last-Modified', async () => {
    const p = join(ROOT, 'changing.txt');
    writeFileSync(p, 'one');
    utimesSync(p, MTIME, MTIME);
    const a = await get('/changing.txt');
    writeFileSync(p, 'two!');
    const b = await get('/changing.txt');
    assert.notEqual(a.headers.etag, b.headers.etag);
    assert.notEqual(a.headers['last-modified'], b.headers['last-modified']);
    assert.equal((await get('/changing.txt', { 'if-none-match': String(a.headers.etag) })).status, 200);
  });
});

// ---- ranges

describe('ranges', () => {
  test('one range: 206 with Content-Range and those bytes', async () => {
    const r = await get('/text.txt', { range: 'bytes=10-19' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 10-19/${TEXT.length}`);
    assert.equal(r.headers['content-length'], '10');
    assert.deepEqual(r.body, TEXT.subarray(10, 20));
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    const suffix = await get('/text.txt', { range: 'bytes=-5' });
    assert.deepEqual(suffix.body, TEXT.subarray(TEXT.length - 5));
    const open = await get('/text.txt', { range: `bytes=${TEXT.length - 3}-` });
    assert.deepEqual(open.body, TEXT.subarray(TEXT.length - 3));
  });

  test('one range of a large file streams those bytes', async () => {
    const r = await get('/mid.bin', { range: 'bytes=1000-150999' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 1000-150999/${MID.length}`);
    assert.equal(sha(r.body), sha(MID.subarray(1000, 151000)));
    const big = await get('/big.bin', { range: 'bytes=4000000-' });
    assert.equal(sha(big.body), sha(BIG.subarray(4000000)));
  });

  test('several ranges: multipart/byteranges, each part with its Content-Type and Content-Range', async () => {
    const r = await get('/text.txt', { range: 'bytes=0-9, 100-149, -20' });
    assert.equal(r.status, 206);
    const type = String(r.headers['content-type']);
    assert.match(type, /^multipart\/byteranges; boundary=/);
    assert.equal(r.headers['content-length'], String(r.body.length));
    const parts = parseMultipart(type, r.body);
    assert.equal(parts.length, 3);
    const want: [number, number][] = [
      [0, 9],
      [100, 149],
      [TEXT.length - 20, TEXT.length - 1],
    ];
    for (let i = 0; i < 3; i++) {
      const [s, e] = want[i];
      assert.equal(parts[i].headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(parts[i].headers['content-range'], `bytes ${s}-${e}/${TEXT.length}`);
      assert.deepEqual(parts[i].data, TEXT.subarray(s, e + 1));
    }
  });

  test('several ranges of a large file: the multipart body streams', async () => {
    const r = await get('/big.bin', { range: 'bytes=0-99999,1000000-1299999,5000000-' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-length'], String(r.body.length));
    const parts = parseMultipart(String(r.headers['content-type']), r.body);
    assert.equal(parts.length, 3);
    assert.equal(sha(parts[0].data), sha(BIG.subarray(0, 100000)));
    assert.equal(sha(parts[1].data), sha(BIG.subarray(1000000, 1300000)));
    assert.equal(sha(parts[2].data), sha(BIG.subarray(5000000)));
    assert.equal(parts[2].headers['content-range'], `bytes 5000000-${BIG.length - 1}/${BIG.length}`);
  });

  test('unsatisfiable: 416 with Content-Range: bytes */size', async () => {
    const r = await get('/text.txt', { range: `bytes=${TEXT.length}-` });
    assert.equal(r.status, 416);
    assert.equal(r.headers['content-range'], `bytes */${TEXT.length}`);
    assert.equal((await get('/empty.txt', { range: 'bytes=0-' })).status, 416);
  });

  test('a malformed or foreign-unit Range is ignored: 200', async () => {
    for (const range of ['bytes=5-1', 'items=0-1', 'bytes=abc', 'bytes=']) {
      const r = await get('/text.txt', { range });
      assert.equal(r.status, 200, range);
      assert.equal(r.body.length, TEXT.length);
    }
  });

  test('If-Range: the same ETag or Last-Modified gives the range, another gives the whole file', async () => {
    const etag = String((await get('/text.txt')).headers.etag);
    const yes = await get('/text.txt', { range: 'bytes=0-4', 'if-range': etag });
    assert.equal(yes.status, 206);
    const date = await get('/text.txt', { range: 'bytes=0-4', 'if-range': LAST_MODIFIED });
    assert.equal(date.status, 206);
    const no = await get('/text.txt', { range: 'bytes=0-4', 'if-range': '"stale"' });
    assert.equal(no.status, 200);
    assert.deepEqual(no.body, TEXT);
    const weak = await get('/text.txt', { range: 'bytes=0-4', 'if-range': `W/${etag}` });
    assert.equal(weak.status, 200, 'a weak tag never matches');
    const old = await get('/text.txt', { range: 'bytes=0-4', 'if-range': 'Sun, 03 Mar 2024 00:00:00 GMT' });
    assert.equal(old.status, 200);
  });

  test('preconditions come first: If-None-Match matching with Range is 304', async () => {
    const etag = String((await get('/text.txt')).headers.etag);
    assert.equal((await get('/text.txt', { range: 'bytes=0-4', 'if-none-match': etag })).status, 304);
  });
});

// ---- precompressed siblings

describe('precompressed', () => {
  test('the sibling the client prefers: br, gzip, zstd; the file’s type, the sibling’s bytes', async () => {
    const cases: [string, string, Buffer][] = [
      ['br', 'br', APP_BR],
      ['gzip', 'gzip', APP_GZ],
      ['x-gzip', 'gzip', APP_GZ],
      ['zstd', 'zstd', APP_ZST],
      ['gzip, deflate, br, zstd', 'zstd', APP_ZST],
      ['gzip, deflate, br', 'br', APP_BR],
      ['br;q=0.5, gzip', 'gzip', APP_GZ],
      ['*', 'zstd', APP_ZST],
      ['*, zstd;q=0', 'br', APP_BR],
    ];
    for (const [accept, coding, bytes] of cases) {
      const r = await get('/app.js', { 'accept-encoding': accept });
      assert.equal(r.status, 200, accept);
      assert.equal(r.headers['content-encoding'], coding, accept);
      assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8', accept);
      assert.equal(r.headers['content-length'], String(bytes.length), accept);
      assert.equal(r.headers.vary, 'Accept-Encoding');
      assert.deepEqual(r.body, bytes, accept);
    }
  });

  test('identity when no sibling is acceptable, with Vary', async () => {
    for (const accept of [undefined, '', 'identity', 'deflate', 'br;q=0, gzip;q=0, zstd;q=0']) {
      const r = await get('/app.js', accept === undefined ? {} : { 'accept-encoding': accept });
      assert.equal(r.headers['content-encoding'], undefined, String(accept));
      assert.deepEqual(r.body, APP_JS);
      assert.equal(r.headers.vary, 'Accept-Encoding');
    }
  });

  test('only the siblings that exist; a sibling older than its file is never served', async () => {
    const br = await get('/only-gz.css', { 'accept-encoding': 'br, gzip' });
    assert.equal(br.headers['content-encoding'], 'gzip');
    assert.deepEqual(zlib.gunzipSync(br.body), TEXT);
    const brOnly = await get('/only-gz.css', { 'accept-encoding': 'br' });
    assert.equal(brOnly.headers['content-encoding'], undefined);
    assert.deepEqual(brOnly.body, TEXT);
    const stale = await get('/stale.js', { 'accept-encoding': 'gzip' });
    assert.equal(stale.headers['content-encoding'], undefined);
    assert.deepEqual(stale.body, TEXT);
  });

  test('the sibling’s own validators; 304 and ranges apply to the sibling’s bytes', async () => {
    const id = await get('/app.js');
    const br = await get('/app.js', { 'accept-encoding': 'br' });
    assert.match(String(br.headers.etag), ETAG);
    assert.notEqual(br.headers.etag, id.headers.etag);
    const nm = await get('/app.js', { 'accept-encoding': 'br', 'if-none-match': String(br.headers.etag) });
    assert.equal(nm.status, 304);
    assert.equal(nm.headers['content-encoding'], undefined, '304 carries no Content-Encoding');
    // The identity's tag does not match the br variant.
    const other = await get('/app.js', { 'accept-encoding': 'br', 'if-none-match': String(id.headers.etag) });
    assert.equal(other.status, 200);
    const part = await get('/app.js', { 'accept-encoding': 'br', range: 'bytes=0-9' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-encoding'], 'br');
    assert.equal(part.headers['content-range'], `bytes 0-9/${APP_BR.length}`);
    assert.deepEqual(part.body, APP_BR.subarray(0, 10));
  });

  test('asking for the sibling by name serves it as a file, without Content-Encoding', async () => {
    const r = await get('/app.js.gz', { 'accept-encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers['content-type'], 'application/gzip');
    assert.deepEqual(r.body, APP_GZ);
  });
});

// ---- SPA, methods

describe('spa fallback and methods', () => {
  test('a missing path without extension gets the root’s index file; with one, 404', async () => {
    for (const p of ['/spa/users/42', '/spa/settings', '/spa/deep/route/', '/spa/']) {
      const r = await get(p);
      assert.equal(r.status, 200, p);
      assert.deepEqual(r.body, SPA_INDEX, p);
      assert.equal(r.headers['content-type'], 'text/html; charset=utf-8', p);
    }
    assert.equal((await get('/spa/missing.js')).status, 404);
    assert.equal((await get('/spa/assets/missing.css')).status, 404);
    assert.equal((await get('/spa/real.txt')).body.toString(), 'a real file\n');
    assert.equal((await get('/spa/assets/app.js')).status, 200);
    assert.equal(
      (await rawGet('/spa/users/42', '', 'HEAD')).headers['content-length'],
      String(SPA_INDEX.length),
    );
    assert.equal((await get('/spa/.env')).status, 404, 'refused paths never fall back');
    // Dot segments are resolved before routing: this is /secret.txt on the main route, not there.
    assert.equal((await rawGet('/spa/../secret.txt')).status, 404);
  });

  test('an upgrade request gets the file as a plain answer, never a tunnel', async () => {
    const up =
      'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const r = await rawGet('/hello.txt', up);
    assert.equal(r.status, 200);
    assert.equal(r.body, HELLO.toString());
    assert.equal((await rawGet('/.env', up)).status, 404);
  });

  test('without spaFallback, a missing path without extension is 404', async () => {
    assert.equal((await get('/users/42')).status, 404);
  });

  test('methods other than GET and HEAD: 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await get('/hello.txt', {}, method);
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD', method);
    }
    // A body that is never sent: answered at once, not waited for.
    const raw405 = await rawGet('/hello.txt', 'Content-Length: 5\r\n', 'POST');
    assert.equal(raw405.status, 405);
  });
});

// ---- streaming and descriptors

describe('streaming', () => {
  test('a 5 MiB file arrives intact, also to a client that reads slowly', async () => {
    const r = await get('/big.bin');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(BIG.length));
    assert.equal(sha(r.body), sha(BIG));
    // A reader that stops for a while: the server waits for it (backpressure), then finishes.
    const u = new URL(gh.url('plain'));
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest({ host: u.hostname, port: u.port, path: '/big.bin', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.pause();
        setTimeout(() => res.resume(), 300);
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(sha(body), sha(BIG));
  });

  test('a client that leaves mid-file: the read stops and the log says 499/client_closed', async () => {
    const u = new URL(gh.url('plain'));
    const before = gh.log.lines.length;
    await new Promise<void>((resolve) => {
      const s = netConnect(Number(u.port), u.hostname, () =>
        s.write('GET /big.bin?leaving=1 HTTP/1.1\r\nHost: static.test\r\n\r\n'),
      );
      let got = 0;
      s.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 100_000) s.destroy();
      });
      s.on('close', () => resolve());
    });
    await until(() =>
      gh.log.lines.slice(before).some((l) => l.includes('leaving=1') || l.includes('/big.bin')),
    );
    const e = gh.log
      .entries()
      .slice(before)
      .find((x) => String(x.path) === '/big.bin');
    assert.ok(e);
    assert.ok(Number(e.bytes) < BIG.length, 'not the whole file');
  });

  test('no descriptor leaks: the count of open fds is flat after 500 requests of every kind', async (t) => {
    if (!existsSync('/proc/self/fd')) return t.skip('needs /proc/self/fd');
    const fds = () => readdirSync('/proc/self/fd').length;
    const client = new Client(gh.url('plain'), { pipelining: 1 });
    const kinds: [string, Record<string, string>, string][] = [
      ['/hello.txt', {}, 'GET'],
      ['/mid.bin', {}, 'GET'],
      ['/text.txt', { range: 'bytes=0-9,20-29' }, 'GET'],
      ['/mid.bin', { range: 'bytes=0-99999,150000-' }, 'GET'],
      ['/text.txt', {}, 'HEAD'],
      ['/nope.txt', {}, 'GET'],
      ['/link-out.txt', {}, 'GET'],
      ['/.env', {}, 'GET'],
      ['/sub', {}, 'GET'],
      ['/sub/', {}, 'GET'],
      ['/app.js', { 'accept-encoding': 'br' }, 'GET'],
      ['/only-gz.css', { 'accept-encoding': 'zstd, br, gzip' }, 'GET'],
      ['/stale.js', { 'accept-encoding': 'gzip' }, 'GET'],
      ['/text.txt', { 'if-none-match': '*' }, 'GET'],
      ['/text.txt', { 'if-match': '"x"' }, 'GET'],
      ['/text.txt', { range: 'bytes=999999-' }, 'GET'],
      ['/spa/route', {}, 'GET'],
      ['/hello.txt', {}, 'POST'],
      ['/z/prose.txt', { 'accept-encoding': 'gzip' }, 'GET'],
    ];
    const one = async (i: number) => {
      const [path, headers, method] = kinds[i % kinds.length];
      const r = await client.request({ path, method: method as 'GET', headers });
      await r.body.arrayBuffer();
    };
    try {
      for (let i = 0; i < kinds.length; i++) await one(i); // warm: the connection and lazy state open
      const start = fds();
      for (let i = 0; i < 500; i++) await one(i);
      // And clients that leave in the middle of large files.
      const u = new URL(gh.url('plain'));
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((resolve) => {
          const s = netConnect(Number(u.port), u.hostname, () =>
            s.write('GET /big.bin HTTP/1.1\r\nHost: static.test\r\n\r\n'),
          );
          s.once('data', () => s.destroy());
          s.on('close', () => resolve());
        });
      }
      await until(() => fds() <= start + 1, 5000, `fd count back to ${start} (now ${fds()})`);
    } finally {
      await client.close();
    }
  });
});

// ---- with middlewares

describe('with middlewares', () => {
  test('compress in front: the file compressed on the fly, small and streamed; 206 and encoded siblings untouched', async () => {
    const small = await get('/z/text.txt', { 'accept-encoding': 'gzip' });
    assert.equal(small.status, 200);
    assert.equal(small.headers['content-encoding'], 'gzip');
    assert.deepEqual(zlib.gunzipSync(small.body), TEXT);
    const big = await get('/z/prose.txt', { 'accept-encoding': 'br' });
    assert.equal(big.headers['content-encoding'], 'br');
    assert.equal(sha(zlib.brotliDecompressSync(big.body)), sha(PROSE_BIG));
    const part = await get('/z/text.txt', { 'accept-encoding': 'gzip', range: 'bytes=0-99' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-encoding'], undefined);
    assert.deepEqual(part.body, TEXT.subarray(0, 100));
    // A precompressed sibling is already encoded: passed on as it is.
    const sib = await get('/zp/app.js', { 'accept-encoding': 'br' });
    assert.equal(sib.headers['content-encoding'], 'br');
    assert.deepEqual(sib.body, APP_BR);
    // HEAD through the compressor.
    const head = await rawGet('/z/text.txt', 'Accept-Encoding: gzip\r\n', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  test('onResponse hooks (the headers middleware) apply to static answers', async () => {
    const r = await get('/h/hello.txt');
    assert.equal(r.headers['x-static'], 'yes');
    const nm = await get('/h/hello.txt', { 'if-none-match': String(r.headers.etag) });
    assert.equal(nm.status, 304);
    assert.equal(nm.headers['x-static'], 'yes');
  });
});

// ---- HTTP/2

describe('HTTP/2', () => {
  for (const listener of ['h2c', 'tls'] as const) {
    test(`${listener}: GET, a Range, a 304, a 5 MiB file and a traversal attempt`, async (t) => {
      if (listener === 'tls' && ca === undefined) return t.skip('needs openssl for the certificates');
      const session = h2(listener);
      try {
        const r = await h2get(session, '/hello.txt');
        assert.equal(r.status, 200);
        assert.deepEqual(r.body, HELLO);
        assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(r.headers['content-length'], String(HELLO.length));
        const etag = String(r.headers.etag);
        assert.match(etag, ETAG);

        const part = await h2get(session, '/mid.bin', { range: 'bytes=100-199999' });
        assert.equal(part.status, 206);
        assert.equal(part.headers['content-range'], `bytes 100-199999/${MID.length}`);
        assert.equal(sha(part.body), sha(MID.subarray(100, 200000)));

        const multi = await h2get(session, '/text.txt', { range: 'bytes=0-1,10-11' });
        assert.equal(multi.status, 206);
        assert.equal(parseMultipart(String(multi.headers['content-type']), multi.body).length, 2);

        const nm = await h2get(session, '/hello.txt', { 'if-none-match': etag });
        assert.equal(nm.status, 304);
        assert.equal(nm.body.length, 0);

        const big = await h2get(session, '/big.bin');
        assert.equal(sha(big.body), sha(BIG));

        const br = await h2get(session, '/app.js', { 'accept-encoding': 'br' });
        assert.equal(br.headers['content-encoding'], 'br');
        assert.deepEqual(br.body, APP_BR);

        const bad = await h2get(session, '/../secret.txt');
        assert.equal(bad.status, 400);
        assert.ok(!bad.body.toString().includes(SECRET));
        const link = await h2get(session, '/link-out.txt');
        assert.equal(link.status, 404);
      } finally {
        session.close();
      }
    });
  }
});

// ---- compile-time checks

describe('compileStatic', () => {
  const cfg = (root: string, more: object = {}) => ({
    root,
    index: 'index.html' as string | false,
    precompressed: false,
    spaFallback: false,
    dotfiles: false,
    ...more,
  });

  test('a root that does not exist, or is not a directory, is a config error naming where', () => {
    assert.throws(
      () => compileStatic(cfg(join(BASE, 'missing')), 'routes.3.static'),
      /^Error: routes\.3\.static\.root: no such directory/,
    );
    assert.throws(
      () => compileStatic(cfg(join(ROOT, 'hello.txt')), 'routes.0.static'),
      /routes\.0\.static\.root: not a directory/,
    );
    assert.throws(
      () => compileStatic(cfg(ROOT, { index: '..' }), 'routes.0.static'),
      /routes\.0\.static\.index/,
    );
    assert.throws(() => compileStatic(cfg(ROOT, { index: '.index.html' }), 'routes.0.static'), /dotfile/);
  });

  test('a root given through a symlink is resolved once', async () => {
    const link = join(BASE, 'www-link');
    symlinkSync(ROOT, link);
    const h = compileStatic(cfg(link), 'routes.0.static') as unknown as { root: string };
    assert.equal(h.root, realpathSync(ROOT));
  });

  test('Gatehouse refuses to start on a static root that does not exist', async () => {
    await assert.rejects(
      start(`
listeners: [{ name: web, address: 127.0.0.1:0 }]
routes: [{ name: files, static: { root: "${join(BASE, 'nowhere')}" } }]
`),
      /routes\.0\.static\.root: /,
    );
  });
});
