// The upstream HTTP/1.1 pool (src/upstream/h1pool): keep-alive and when a connection is NOT reused,
// the handler calls forward.ts relies on, pause/resume, aborts, the error codes, request bodies, the
// queue, and closing. Against real sockets on loopback: raw `net` origins where the bytes matter,
// node:http where they do not.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import type { Dispatcher } from 'undici';
import type { H1DispatchOptions } from '../../src/upstream/h1pool/connection.ts';
import type { ResponseHeaders } from '../../src/upstream/h1pool/parser.ts';
import { H1Pool, type H1PoolOptions } from '../../src/upstream/h1pool/pool.ts';
import { needCommand } from '../helpers/require.ts';

// --- helpers -------------------------------------------------------------------------------------------

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RawOrigin {
  url: string;
  /** Connections accepted so far. */
  connections: Socket[];
  /** Request heads received, in order. */
  heads: string[];
  /** Connections closed (from either side). */
  closed: number;
}

/**
 * A `net` origin: `answer` is called for every request head (bodies are not read), with the socket,
 * the head, which connection (0-based) and which request on it.
 */
async function rawOrigin(
  answer: (s: Socket, head: string, conn: number, n: number) => void,
): Promise<RawOrigin> {
  const o: RawOrigin = { url: '', connections: [], heads: [], closed: 0 };
  const server: Server = createServer((s) => {
    const conn = o.connections.length;
    o.connections.push(s);
    s.on('error', () => {});
    s.on('close', () => o.closed++);
    let buf = '';
    let n = 0;
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        o.heads.push(head);
        answer(s, head, conn, n++);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  o.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of o.connections) s.destroy();
        server.close(() => r());
      }),
  );
  return o;
}

async function httpOrigin(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createHttpServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server, sockets };
}

function pool(url: string, opts: Partial<H1PoolOptions> = {}): H1Pool {
  const p = new H1Pool(url, {
    connections: 4,
    connectTimeout: 2000,
    headersTimeout: 2000,
    bodyTimeout: 2000,
    keepAliveTimeout: 4000,
    ...opts,
  });
  cleanups.push(() => p.destroy());
  return p;
}

const ok = (body: string, ...headers: string[]) =>
  `HTTP/1.1 200 OK\r\n${headers.map((h) => `${h}\r\n`).join('')}Content-Length: ${body.length}\r\n\r\n${body}`;

interface Result {
  events: string[];
  status: number;
  statuses: number[];
  headers: ResponseHeaders;
  body: string;
  trailers: ResponseHeaders | null;
  error: (Error & { code?: string }) | null;
  controller: Dispatcher.DispatchController | null;
}

interface Hooks {
  start?: (c: Dispatcher.DispatchController) => void;
  head?: (c: Dispatcher.DispatchController, status: number) => void;
  data?: (c: Dispatcher.DispatchController, chunk: Buffer) => void;
}

/** A handler that records everything; `hooks` may act on the controller at each step. */
class Recorder implements Dispatcher.DispatchHandler {
  r: Result = {
    events: [],
    status: 0,
    statuses: [],
    headers: {},
    body: '',
    trailers: null,
    error: null,
    controller: null,
  };
  readonly done: Promise<Result>;
  readonly hooks: Hooks;
  private resolve!: (r: Result) => void;
  constructor(hooks: Hooks = {}) {
    this.hooks = hooks;
    this.done = new Promise((r) => {
      this.resolve = r;
    });
  }
  onRequestStart(c: Dispatcher.DispatchController, context: unknown): void {
    this.r.controller = c;
    this.r.events.push('start');
    assert.equal(typeof context, 'object');
    this.hooks.start?.(c);
  }
  onResponseStart(c: Dispatcher.DispatchController, status: number, headers: ResponseHeaders): void {
    this.r.events.push(`head ${status}`);
    this.r.statuses.push(status);
    if (status >= 200) {
      this.r.status = status;
      this.r.headers = headers;
    }
    this.hooks.head?.(c, status);
  }
  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.r.events.at(-1) !== 'data') this.r.events.push('data');
    this.r.body += chunk.toString('latin1');
    this.hooks.data?.(c, chunk);
  }
  onResponseEnd(_c: Dispatcher.DispatchController, trailers: ResponseHeaders): void {
    this.r.events.push('end');
    this.r.trailers = trailers;
    this.resolve(this.r);
  }
  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.r.events.push(`error ${(err as { code?: string }).code}`);
    this.r.error = err;
    this.resolve(this.r);
  }
}

const GET: H1DispatchOptions = { method: 'GET', path: '/', headers: ['host', 'example.com'], body: null };

function send(p: H1Pool, opts: Partial<H1DispatchOptions> = {}, rec = new Recorder()): Promise<Result> {
  p.dispatch({ ...GET, ...opts }, rec);
  return rec.done;
}

// --- keep-alive ----------------------------------------------------------------------------------------

test('keep-alive: sequential requests share one connection; the head is written as given', async () => {
  const o = await rawOrigin((s, _h, conn, n) => s.write(ok(`c${conn}r${n}`)));
  const p = pool(o.url);
  for (let i = 0; i < 3; i++) {
    const r = await send(p, { path: `/x${i}?q=1`, headers: ['host', 'example.com', 'x-a', 'b c'] });
    assert.deepEqual(r.events, ['start', 'head 200', 'data', 'end']);
    assert.equal(r.body, `c0r${i}`);
    assert.deepEqual(r.trailers, {});
  }
  assert.equal(o.connections.length, 1);
  assert.equal(o.heads[0], 'GET /x0?q=1 HTTP/1.1\r\nhost: example.com\r\nx-a: b c\r\n\r\n');
});

test('the head: Host added when missing, our framing replaces Transfer-Encoding and Connection', async () => {
  const o = await rawOrigin((s) => s.write(ok('')));
  const p = pool(o.url);
  await send(p, { headers: ['transfer-encoding', 'gzip', 'Connection', 'close', 'x-b', '1'] });
  assert.equal(o.heads[0], `GET / HTTP/1.1\r\nx-b: 1\r\nhost: ${new URL(o.url).host}\r\n\r\n`);
});

test('a header value with CR, LF or NUL is refused before anything is sent; the connection goes on', async () => {
  const o = await rawOrigin((s) => s.write(ok('fine')));
  const p = pool(o.url);
  await send(p); // one connection, idle
  for (const bad of ['a\r\nx-injected: 1', 'a\nb', 'a\0b']) {
    const r = await send(p, { headers: ['x-a', bad] });
    assert.equal(r.error?.code, 'UND_ERR_INVALID_ARG');
  }
  const r = await send(p, { path: '/a b' });
  assert.equal(r.error?.code, 'UND_ERR_INVALID_ARG');
  assert.equal((await send(p)).body, 'fine');
  assert.equal(o.heads.length, 2);
  assert.equal(o.connections.length, 1);
});

test('not reused: Connection: close, HTTP/1.0, a close-delimited body, bytes after the response', async () => {
  const answers = [
    ok('a', 'Connection: close'),
    'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb',
    'HTTP/1.1 200 OK\r\n\r\nc', // to the close
    `${ok('d')}HTTP/1.1 200 OK\r\n`, // then garbage
    'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n', // may be followed by a body
    ok('f'),
  ];
  let k = 0;
  const o = await rawOrigin((s) => {
    const a = answers[k++];
    if (a.startsWith('HTTP/1.1 200 OK\r\n\r\n')) s.end(a);
    else s.write(a);
  });
  const p = pool(o.url);
  const bodies = [];
  for (let i = 0; i < answers.length; i++) {
    const r = await send(p);
    assert.equal(r.error, null, `answer ${i}: ${r.error}`);
    bodies.push(r.body);
    await delay(20);
  }
  assert.deepEqual(bodies, ['a', 'b', 'c', 'd', '', 'f']);
  assert.equal(o.connections.length, 6, 'a new connection after each of the five');
});

test('HTTP/1.0 with keep-alive and HEAD responses with a Content-Length keep the connection', async () => {
  let k = 0;
  const o = await rawOrigin((s) => {
    k++;
    if (k === 1) s.write('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok');
    else if (k === 2) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
    else s.write(ok('after'));
  });
  const p = pool(o.url);
  assert.equal((await send(p)).body, 'ok');
  const head = await send(p, { method: 'HEAD' });
  assert.deepEqual(head.events, ['start', 'head 200', 'end']);
  assert.equal(head.headers['content-length'], '1000');
  assert.equal((await send(p)).body, 'after');
  assert.equal(o.connections.length, 1);
});

test('1xx heads reach the handler before the final one; headers, repeats and trailers as undici gives them', async () => {
  const o = await rawOrigin((s) =>
    s.write(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' +
        'HTTP/1.1 201 Created\r\nX-A: 1\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nConstructor: c\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\nX-Sum: 6\r\n\r\n',
    ),
  );
  const r = await send(pool(o.url));
  assert.deepEqual(r.statuses, [100, 103, 201]);
  assert.equal(r.body, 'abcde');
  assert.deepEqual(
    { ...r.headers },
    { 'x-a': '1', 'set-cookie': ['a=1', 'b=2'], constructor: 'c', 'transfer-encoding': 'chunked' },
  );
  assert.deepEqual({ ...r.trailers }, { 'x-sum': ['5', '6'] });
});

test('an idle connection the target closed is dropped, not used; the next request gets a new one', async () => {
  const o = await rawOrigin((s) => {
    s.write(ok('x'));
    setTimeout(() => s.end(), 10); // closes without saying so
  });
  const p = pool(o.url);
  assert.equal((await send(p)).body, 'x');
  await delay(60);
  assert.equal(p.size, 0, 'the closed connection left the pool');
  const r = await send(p);
  assert.equal(r.error, null);
  assert.equal(o.connections.length, 2);
});

test('a reused connection the target closes before answering: UND_ERR_SOCKET, never a silent loss', async () => {
  const o = await rawOrigin((s, _h, _c, n) => {
    if (n === 0) s.write(ok('first'));
    else s.destroy(); // the race: the target gave up on the connection just as we reused it
  });
  const p = pool(o.url);
  assert.equal((await send(p)).body, 'first');
  const r = await send(p);
  assert.equal(r.error?.code, 'UND_ERR_SOCKET');
  assert.deepEqual(r.events, ['start', 'error UND_ERR_SOCKET']);
});

test('a Keep-Alive timeout from the target is honoured, less 2 s; at 2 s or less the connection is not kept', async () => {
  const o = await rawOrigin((s, _h, conn) => s.write(ok('k', `Keep-Alive: timeout=${conn === 0 ? 3 : 2}`)));
  const p = pool(o.url, { keepAliveTimeout: 10_000 });
  await send(p);
  const t0 = performance.now();
  while (o.closed === 0 && performance.now() - t0 < 4000) await delay(20);
  const idle = performance.now() - t0;
  assert.ok(idle > 800 && idle < 2500, `dropped after ${idle.toFixed(0)} ms (3 s - 2 s, not 3 s or 10 s)`);
  await send(p);
  await delay(50);
  assert.equal(o.closed, 2, 'timeout=2 leaves no time: closed after the response');
});

test('the pool keepAliveTimeout drops an idle connection', async () => {
  const o = await rawOrigin((s) => s.write(ok('k')));
  const p = pool(o.url, { keepAliveTimeout: 200 });
  await send(p);
  await delay(100);
  assert.equal(o.closed, 0);
  await delay(250);
  assert.equal(o.closed, 1);
  assert.equal(p.size, 0);
});

test('unsolicited bytes on an idle connection: dropped', async () => {
  const o = await rawOrigin((s) => {
    s.write(ok('x'));
    setTimeout(() => s.write('HTTP/1.1 200 OK\r\n'), 10);
  });
  const p = pool(o.url);
  await send(p);
  await delay(60);
  assert.equal(p.size, 0);
  assert.equal((await send(p)).body, 'x');
});

// --- the queue --------------------------------------------------------------------------------------------

test('at most `connections` sockets; the rest wait in FIFO order', async () => {
  const order: string[] = [];
  const o = await rawOrigin((s, head) => {
    const path = head.split(' ')[1];
    order.push(path);
    setTimeout(() => s.write(ok(path)), 20);
  });
  const p = pool(o.url, { connections: 2 });
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => send(p, { path: `/${i}` })));
  assert.deepEqual(
    results.map((r) => r.body),
    Array.from({ length: 8 }, (_, i) => `/${i}`),
  );
  assert.equal(o.connections.length, 2);
  assert.deepEqual(
    order,
    Array.from({ length: 8 }, (_, i) => `/${i}`),
  );
});

test('a request aborted in the queue leaves it at once; the others go on', async () => {
  const o = await rawOrigin((s, head) => setTimeout(() => s.write(ok(head.split(' ')[1])), 30));
  const p = pool(o.url, { connections: 1 });
  const first = send(p, { path: '/1' });
  const rec = new Recorder();
  const second = send(p, { path: '/2' }, rec);
  const third = send(p, { path: '/3' });
  const queued = p.queued;
  rec.r.controller!.abort(new Error('gone'));
  assert.equal(p.queued, queued - 1);
  const r2 = await second;
  assert.deepEqual(r2.events, ['start', 'error undefined']);
  assert.equal(r2.error?.message, 'gone');
  assert.equal(rec.r.controller!.aborted, true);
  assert.deepEqual([(await first).body, (await third).body], ['/1', '/3']);
  assert.deepEqual(
    o.heads.map((h) => h.split(' ')[1]),
    ['/1', '/3'],
  );
});

test('aborted in onRequestStart: nothing is sent', async () => {
  const o = await rawOrigin((s) => s.write(ok('x')));
  const p = pool(o.url);
  const r = await send(p, {}, new Recorder({ start: (c) => c.abort(new Error('client left')) }));
  assert.deepEqual(r.events, ['start', 'error undefined']);
  await delay(30);
  assert.equal(o.heads.length, 0);
});

// --- pause, resume, abort ------------------------------------------------------------------------------

test('pause stops the body until resume; the whole body arrives', async () => {
  const body = 'z'.repeat(256 * 1024);
  const o = await rawOrigin((s) => s.write(ok(body)));
  const p = pool(o.url);
  let paused = 0;
  const rec = new Recorder({
    data: (c) => {
      c.pause();
      paused++;
      assert.equal(c.paused, true);
      setTimeout(() => c.resume(), 2);
    },
  });
  const r = await send(p, {}, rec);
  assert.equal(r.body.length, body.length);
  assert.ok(paused > 1);
  assert.equal(rec.r.controller!.paused, false);
});

test('pause on the last bytes: the end comes after resume', async () => {
  const o = await rawOrigin((s) => s.write(ok('tiny')));
  const p = pool(o.url);
  let resumed = false;
  const r = await send(
    p,
    {},
    new Recorder({
      data: (c) => {
        c.pause();
        setTimeout(() => {
          resumed = true;
          c.resume();
        }, 30);
      },
    }),
  );
  assert.ok(resumed);
  assert.deepEqual(r.events, ['start', 'head 200', 'data', 'end']);
  // and the connection is reused after, reading again
  const t0 = performance.now();
  assert.equal((await send(p)).body, 'tiny');
  assert.ok(performance.now() - t0 < 200);
  assert.equal(o.connections.length, 1);
});

test('abort mid-response: onResponseError with the reason, no other call after, the connection closed', async () => {
  const o = await rawOrigin((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart'));
  const p = pool(o.url);
  const reason = new Error('client_closed');
  const rec = new Recorder({ data: (c) => c.abort(reason) });
  const r = await send(p, {}, rec);
  assert.deepEqual(r.events, ['start', 'head 200', 'data', 'error undefined']);
  assert.equal(r.error, reason);
  assert.equal(rec.r.controller!.reason, reason);
  await delay(30);
  assert.equal(o.closed, 1);
  assert.equal(p.size, 0);
  rec.r.controller!.abort(new Error('again')); // a no-op
  assert.equal(r.events.length, 4);
});

test('a handler that throws ends the request with its error, and the connection', async () => {
  const o = await rawOrigin((s) => s.write(ok('x')));
  const p = pool(o.url);
  const boom = new Error('boom');
  const r = await send(
    p,
    {},
    new Recorder({
      head: () => {
        throw boom;
      },
    }),
  );
  assert.equal(r.error, boom);
  await delay(20);
  assert.equal(p.size, 0);
});

// --- errors and their codes --------------------------------------------------------------------------------

test('connect refused: the system error as it is (ECONNREFUSED)', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  const p = pool(`http://127.0.0.1:${port}`);
  const r = await send(p);
  assert.equal(r.error?.code, 'ECONNREFUSED');
  assert.equal(p.size, 0);
});

test('connect timeout: UND_ERR_CONNECT_TIMEOUT', async (t) => {
  // A listener that never accepts, its queue full: further SYNs go unanswered.
  if (!needCommand(t, 'python3', 'a listener that never accepts')) return;
  const hole = spawn(
    'python3',
    [
      '-c',
      "import socket,time\ns=socket.socket();s.bind(('127.0.0.1',0));s.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)",
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  hole.on('error', () => {});
  cleanups.push(() => hole.kill());
  const line = await Promise.race([once(hole.stdout!, 'data'), delay(3000).then(() => null)]);
  assert.ok(line !== null, 'the python3 listener printed its port');
  const port = Number(String(line[0]).trim());
  const fillers = Array.from({ length: 3 }, () => connect(port, '127.0.0.1').on('error', () => {}));
  cleanups.push(() => {
    for (const f of fillers) f.destroy();
  });
  await delay(200);
  const p = pool(`http://127.0.0.1:${port}`, { connectTimeout: 200 });
  const t0 = performance.now();
  const r = await send(p);
  assert.equal(r.error?.code, 'UND_ERR_CONNECT_TIMEOUT');
  const took = performance.now() - t0;
  assert.ok(took >= 190 && took < 1000, `${took} ms`);
});

test('no head in time: UND_ERR_HEADERS_TIMEOUT (per request); a body that stalls: UND_ERR_BODY_TIMEOUT', async () => {
  const o = await rawOrigin((s, head) => {
    if (head.startsWith('GET /stall')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
  });
  const p = pool(o.url, { headersTimeout: 5000 });
  const t0 = performance.now();
  const r = await send(p, { headersTimeout: 150 });
  const took = performance.now() - t0;
  assert.equal(r.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
  assert.ok(took >= 140 && took < 600, `${took} ms`);
  const t1 = performance.now();
  const s = await send(p, { path: '/stall', bodyTimeout: 150 });
  assert.deepEqual(s.events, ['start', 'head 200', 'data', 'error UND_ERR_BODY_TIMEOUT']);
  assert.ok(performance.now() - t1 < 600);
});

test('a paused response does not time out as idle', async () => {
  const o = await rawOrigin((s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc');
    setTimeout(() => s.write('def'), 400);
  });
  const p = pool(o.url, { bodyTimeout: 150 });
  const r = await send(
    p,
    {},
    new Recorder({
      data: (c, chunk) => {
        if (chunk.toString() === 'abc') {
          c.pause();
          setTimeout(() => c.resume(), 300);
        }
      },
    }),
  );
  assert.equal(r.error, null);
  assert.equal(r.body, 'abcdef');
});

test('closed mid-response: UND_ERR_SOCKET (keep-alive), UND_ERR_RES_CONTENT_LENGTH_MISMATCH (Connection: close)', async () => {
  const o = await rawOrigin((s, head) => {
    if (head.startsWith('GET /reset')) {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
      setTimeout(() => s.resetAndDestroy(), 20);
    } else if (head.startsWith('GET /fin')) {
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
    } else {
      s.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nabc');
    }
  });
  const p = pool(o.url);
  assert.equal((await send(p, { path: '/reset' })).error?.code, 'UND_ERR_SOCKET');
  assert.equal((await send(p, { path: '/fin' })).error?.code, 'UND_ERR_SOCKET');
  assert.equal((await send(p, { path: '/close' })).error?.code, 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH');
});

test('a malformed response: HPE_* codes; an oversized head: UND_ERR_HEADERS_OVERFLOW', async () => {
  const answers: Record<string, string> = {
    '/smuggle': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    '/badchunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    '/garbage': 'SSH-2.0-OpenSSH_9.2\r\n',
    '/big': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`,
  };
  const o = await rawOrigin((s, head) => s.write(answers[head.split(' ')[1]]));
  const p = pool(o.url);
  const codes: Record<string, string | undefined> = {};
  for (const path of Object.keys(answers)) codes[path] = (await send(p, { path })).error?.code;
  assert.deepEqual(codes, {
    '/smuggle': 'HPE_INVALID_TRANSFER_ENCODING',
    '/badchunk': 'HPE_INVALID_CHUNK_SIZE',
    '/garbage': 'HPE_INVALID_CONSTANT',
    '/big': 'UND_ERR_HEADERS_OVERFLOW',
  });
});

test('a close-delimited body ends with the close, also when reset', async () => {
  const o = await rawOrigin((s, head) => {
    s.write('HTTP/1.1 200 OK\r\n\r\nall of it');
    if (head.startsWith('GET /reset')) setTimeout(() => s.resetAndDestroy(), 20);
    else setTimeout(() => s.end(), 20);
  });
  const p = pool(o.url);
  const a = await send(p);
  assert.deepEqual([a.error, a.body], [null, 'all of it']);
  const b = await send(p, { path: '/reset' });
  assert.deepEqual([b.error, b.body], [null, 'all of it']);
});

// --- request bodies ------------------------------------------------------------------------------------

function echoBody() {
  return httpOrigin((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString();
      res.end(
        JSON.stringify({
          te: req.headers['transfer-encoding'] ?? null,
          cl: req.headers['content-length'] ?? null,
          body,
        }),
      );
    });
  });
}

test('a body with a content-length goes as is; without one, chunked (empty chunks skipped)', async () => {
  const o = await echoBody();
  const p = pool(o.url);
  const a = await send(p, {
    method: 'POST',
    headers: ['content-length', '11'],
    body: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
  });
  assert.deepEqual(JSON.parse(a.body), { te: null, cl: '11', body: 'hello world' });
  const b = await send(p, {
    method: 'POST',
    headers: [],
    body: Readable.from([Buffer.from('a'), Buffer.alloc(0), Buffer.from('bc')]),
  });
  assert.deepEqual(JSON.parse(b.body), { te: 'chunked', cl: null, body: 'abc' });
  const c = await send(p, { method: 'POST', headers: [], body: Readable.from([]) });
  assert.deepEqual(JSON.parse(c.body), { te: 'chunked', cl: null, body: '' });
  assert.equal(o.sockets.size, 1, 'all on one connection');
});

test('never more than the declared content-length is written', async () => {
  const o = await rawOrigin((s) => s.write(ok('x')));
  let seen = '';
  o.connections.length = 0;
  const p = pool(o.url);
  const r = await send(p, {
    method: 'POST',
    headers: ['content-length', '3'],
    body: Readable.from([Buffer.from('abcGET /smuggled HTTP/1.1\r\n\r\n')]),
  });
  assert.equal(r.error, null);
  await delay(30);
  for (const h of o.heads) seen += h;
  assert.doesNotMatch(seen, /smuggled/);
  assert.equal(o.heads.length, 1);
});

test('request body backpressure: a target that does not read holds the body back', async () => {
  const o = await rawOrigin(() => {}); // reads the head, then stops reading
  for (const s of o.connections) s.pause();
  const p = pool(o.url, { headersTimeout: 0 });
  let produced = 0;
  const body = new Readable({
    read() {
      produced += 65536;
      this.push(Buffer.alloc(65536, 'x'));
    },
  });
  const rec = new Recorder();
  p.dispatch({ method: 'PUT', path: '/', headers: [], body }, rec);
  await delay(100);
  for (const s of o.connections) s.pause();
  await delay(400);
  const after1 = produced;
  await delay(300);
  assert.ok(produced - after1 <= 65536, `the body stopped being read (${produced} bytes produced)`);
  assert.ok(produced < 64 * 1024 * 1024, `bounded: ${produced} bytes`);
  rec.r.controller!.abort(new Error('done'));
  await rec.done;
});

test('a body that errors ends the exchange with that error, through onResponseError', async () => {
  const o = await rawOrigin(() => {});
  const p = pool(o.url);
  const tooLarge = Object.assign(new Error('body too large'), { reason: 'body_too_large' });
  async function* gen() {
    yield Buffer.from('part');
    await delay(20);
    throw tooLarge;
  }
  const r = await send(p, { method: 'POST', headers: [], body: Readable.from(gen(), { objectMode: false }) });
  assert.equal(r.error, tooLarge);
  await delay(30);
  assert.equal(o.closed, 1, 'the half-sent request took its connection with it');
});

test('a body that ends short of its content-length: UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', async () => {
  const o = await rawOrigin(() => {});
  const p = pool(o.url);
  const r = await send(p, {
    method: 'POST',
    headers: ['content-length', '10'],
    body: Readable.from([Buffer.from('abc')]),
  });
  assert.equal(r.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
});

test('an answer before the whole body was sent is delivered; the connection is not reused', async () => {
  const o = await rawOrigin((s, _h, conn) => {
    if (conn === 0) s.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig');
    else s.write(ok('next'));
  });
  const p = pool(o.url);
  let pushed = 0;
  const body = new Readable({
    read() {
      if (pushed++ < 50) setTimeout(() => this.push(Buffer.alloc(1024, 'b')), 5);
      else this.push(null);
    },
  });
  const r = await send(p, { method: 'POST', headers: [], body });
  assert.equal(r.status, 413);
  assert.equal(r.body, 'big');
  assert.equal(r.error, null);
  assert.equal((await send(p)).body, 'next');
  assert.equal(o.connections.length, 2);
  await delay(400);
  assert.ok(body.readableEnded || body.destroyed || pushed > 50, 'the rest of the body was read and dropped');
});

test('a retry can send an unread body elsewhere: a failed connect does not touch it', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  const dead = pool(`http://127.0.0.1:${port}`);
  const o = await echoBody();
  const good = pool(o.url);
  const body = Readable.from([Buffer.from('replayed')]);
  const first = await send(dead, { method: 'POST', headers: ['content-length', '8'], body });
  assert.equal(first.error?.code, 'ECONNREFUSED');
  assert.equal(body.readableDidRead, false);
  const second = await send(good, { method: 'POST', headers: ['content-length', '8'], body });
  assert.equal(JSON.parse(second.body).body, 'replayed');
});

// --- closing ---------------------------------------------------------------------------------------------

test('close(): idle sockets closed, in-flight finished, then closed; later dispatches fail UND_ERR_CLOSED', async () => {
  const o = await rawOrigin((s, head) => {
    if (head.startsWith('GET /slow')) setTimeout(() => s.write(ok('slow')), 100);
    else s.write(ok('fast'));
  });
  const p = pool(o.url);
  await Promise.all([send(p), send(p)]); // two idle connections
  const slow = send(p, { path: '/slow' });
  let closed = false;
  const closing = p.close().then(() => {
    closed = true;
  });
  await delay(30);
  assert.equal(o.closed, 1, 'the idle one is closed at once');
  assert.equal(closed, false);
  const late = await send(p);
  assert.equal(late.error?.code, 'UND_ERR_CLOSED');
  assert.equal((await slow).body, 'slow');
  await closing;
  assert.equal(p.size, 0);
});

test('destroy(): in-flight and queued requests fail with UND_ERR_DESTROYED', async () => {
  const o = await rawOrigin(() => {});
  const p = pool(o.url, { connections: 1 });
  const a = send(p);
  const b = send(p);
  await delay(30);
  await p.destroy();
  assert.equal((await a).error?.code, 'UND_ERR_DESTROYED');
  assert.equal((await b).error?.code, 'UND_ERR_DESTROYED');
  assert.equal((await send(p)).error?.code, 'UND_ERR_DESTROYED');
});
