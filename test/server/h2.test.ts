// HTTP/2 on node:http2's stream API (server/h2): the frames the responder chooses (HEADERS with
// END_STREAM for gRPC Trailers-Only and empty answers, trailers only when they can come), request
// bodies streamed both ways, 100-continue, CONNECT and unknown Expect refused through the request
// path, a client reset that aborts the upstream request and is logged once, an answer that does not
// wait for the rest of an unwanted upload, and a TLS listener on engine: node where HTTP/1.1 and
// HTTP/2 each reach the path once.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  createServer as createH2Server,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { makeCA, makeCert, tempDir } from '../helpers/certs.ts';
import { type Running, start, until } from '../helpers/gatehouse.ts';
import { origin } from '../helpers/origin.ts';
import { needCommand } from '../helpers/require.ts';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  /** The response HEADERS frame ended the stream. */
  endedWithHeaders: boolean;
  body: Buffer;
  trailers: IncomingHttpHeaders | undefined;
  informational: number[];
}

/** One request on `session`; `body` is sent and the stream ended (null: the HEADERS frame ends it). */
function h2(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body: Buffer | string | null = null,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':authority': 'h2.test', ...headers }, { endStream: body === null });
    const reply: Reply = {
      status: 0,
      headers: {},
      endedWithHeaders: false,
      body: Buffer.alloc(0),
      trailers: undefined,
      informational: [],
    };
    const chunks: Buffer[] = [];
    s.on('headers', (h) => reply.informational.push(Number(h[':status'])));
    s.on('response', (h, flags) => {
      reply.status = Number(h[':status']);
      reply.headers = h;
      reply.endedWithHeaders = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    s.on('trailers', (t) => {
      reply.trailers = t;
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      reply.body = Buffer.concat(chunks);
      resolve(reply);
    });
    s.on('error', reject);
    if (body !== null) s.end(body);
  });
}

async function h2cGatehouse(upstreams: string, routes: string): Promise<Running> {
  return start(`
listeners: [{ name: web, address: "127.0.0.1:0", h2c: true }]
routes: ${routes}
upstreams: ${upstreams}
`);
}

test('responses: whole bodies, empty answers and HEAD end with the right frame; bodies and headers pass', async () => {
  const app = await origin((req, res) => {
    if (req.url === '/empty') {
      res.writeHead(204, { 'x-empty': '1' });
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': body.length || 5,
        'set-cookie': ['a=1', 'b=2'],
        connection: 'keep-alive',
      });
      res.end(body.length ? body : 'hello');
    });
  });
  const gh = await h2cGatehouse(
    `{ u: { targets: [{ url: "${app.url}" }] } }`,
    '[{ name: all, upstream: u }]',
  );
  const session = connect(gh.url());
  try {
    const get = await h2(session, { ':path': '/x?y=1' });
    assert.equal(get.status, 200);
    assert.equal(get.body.toString(), 'hello');
    assert.deepEqual(get.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(get.headers.connection, undefined, 'no connection-specific field in HTTP/2');
    assert.ok(get.headers['x-request-id']);
    assert.equal(get.trailers, undefined, 'a Content-Length body does not wait for trailers');

    const head = await h2(session, { ':path': '/x', ':method': 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.endedWithHeaders, true);
    assert.equal(head.body.length, 0);

    const empty = await h2(session, { ':path': '/empty' });
    assert.equal(empty.status, 204);
    assert.equal(empty.endedWithHeaders, true);
    assert.equal(empty.headers['x-empty'], '1');

    // A body of 1 MiB each way, streamed (more than the stream's flow-control window).
    const big = Buffer.alloc(1024 * 1024, 7);
    const post = await h2(session, { ':path': '/upload', ':method': 'POST' }, big);
    assert.equal(post.status, 200);
    assert.equal(post.body.length, big.length);
    assert.ok(post.body.equals(big));

    // An error page from Gatehouse itself: one HEADERS and one DATA frame, logged as HTTP/2.0.
    const bad = await h2(session, { ':path': '/x', host: 'other.test' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.toString(), /bad_request/);
    const lines = gh.log.entries();
    assert.equal(lines.length, 5);
    assert.ok(lines.every((e) => e.protocol === 'HTTP/2.0'));
  } finally {
    session.close();
    await gh.close();
    await app.close();
  }
});

test('gRPC Trailers-Only goes out as one HEADERS frame with END_STREAM; trailers after a body as trailers', async () => {
  const grpc = createH2Server();
  grpc.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    if (headers[':path'] === '/svc/Missing') {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'nope' },
        { endStream: true },
      );
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-sum': 'abc' }));
    stream.end(Buffer.from([0, 0, 0, 0, 1, 42]));
  });
  grpc.listen(0, '127.0.0.1');
  await once(grpc, 'listening');
  const port = (grpc.address() as AddressInfo).port;
  const gh = await h2cGatehouse(
    `{ g: { targets: [{ url: "h2c://127.0.0.1:${port}" }] } }`,
    '[{ name: grpc, upstream: g }]',
  );
  const session = connect(gh.url());
  const rpc = { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' };
  try {
    const missing = await h2(session, { ...rpc, ':path': '/svc/Missing' }, Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(missing.status, 200);
    assert.equal(missing.endedWithHeaders, true, 'Trailers-Only: HEADERS with END_STREAM');
    assert.equal(missing.headers['grpc-status'], '5');
    assert.equal(missing.headers['grpc-message'], 'nope');
    assert.equal(missing.trailers, undefined);

    const ok = await h2(session, { ...rpc, ':path': '/svc/Echo' }, Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(ok.endedWithHeaders, false);
    assert.deepEqual([...ok.body], [0, 0, 0, 0, 1, 42]);
    assert.equal(ok.trailers?.['grpc-status'], '0');
    assert.equal(ok.trailers?.['x-sum'], 'abc');
  } finally {
    session.close();
    await gh.close();
    grpc.close();
  }
});

test('trailers of a chunked HTTP/1.1 upstream reach an HTTP/2 client', async () => {
  const app = await origin((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-digest' });
    res.write('part one;');
    setTimeout(() => {
      res.addTrailers({ 'x-digest': 'sha-256=abc' });
      res.end('part two');
    }, 20);
  });
  const gh = await h2cGatehouse(
    `{ u: { targets: [{ url: "${app.url}" }] } }`,
    '[{ name: all, upstream: u }]',
  );
  const session = connect(gh.url());
  try {
    const r = await h2(session, { ':path': '/t', te: 'trailers' });
    assert.equal(r.body.toString(), 'part one;part two');
    assert.equal(r.trailers?.['x-digest'], 'sha-256=abc');
  } finally {
    session.close();
    await gh.close();
    await app.close();
  }
});

test('Expect: 100-continue is answered when the body is read; another Expect gets 417, CONNECT 405', async () => {
  const app = await origin();
  const gh = await h2cGatehouse(
    `{ u: { targets: [{ url: "${app.url}" }] } }`,
    '[{ name: all, upstream: u }]',
  );
  const session = connect(gh.url());
  try {
    const cont = await h2(
      session,
      { ':path': '/c', ':method': 'PUT', expect: '100-continue', 'content-length': '4' },
      'abcd',
    );
    assert.deepEqual(cont.informational, [100]);
    assert.equal(cont.status, 200);
    assert.equal(JSON.parse(cont.body.toString()).bytes, 4);

    const other = await h2(session, { ':path': '/c', expect: 'something-else' });
    assert.equal(other.status, 417);

    const tunnel = await new Promise<number>((resolve, reject) => {
      const s = session.request({ ':method': 'CONNECT', ':authority': 'example.test:443' });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', reject);
      s.resume();
    });
    assert.equal(tunnel, 405);
    await until(() => gh.log.entries().length === 3, 2000, 'three log lines');
    const reasons = gh.log.entries().map((e) => e.reason ?? null);
    assert.deepEqual(reasons, [null, 'expectation_failed', 'method_not_allowed']);
  } finally {
    session.close();
    await gh.close();
    await app.close();
  }
});

test('a client that resets its stream aborts the upstream request, and the request is logged once', async () => {
  const upstream: IncomingMessage[] = [];
  const app = await origin((req, res) => {
    if (req.url === '/after') return res.end('ok');
    upstream.push(req);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first;'); // ...and never the rest
  });
  const gh = await h2cGatehouse(
    `{ u: { targets: [{ url: "${app.url}" }] } }`,
    '[{ name: all, upstream: u }]',
  );
  const session = connect(gh.url());
  try {
    const s: ClientHttp2Stream = session.request({ ':path': '/stream', ':authority': 'h2.test' });
    s.on('error', () => {});
    await once(s, 'data');
    const closed = new Promise<boolean>((resolve) => {
      upstream[0].socket.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 3000);
    });
    s.close(constants.NGHTTP2_CANCEL);
    assert.equal(await closed, true, 'the upstream request was aborted');
    await until(() => gh.log.entries().length === 1, 2000, 'the log line');
    await new Promise((r) => setTimeout(r, 100));
    const lines = gh.log.entries();
    assert.equal(lines.length, 1, 'exactly one log line');
    assert.equal(lines[0].reason, 'client_closed');
    assert.equal(lines[0].status, 200);
    // The session is still good for the next request.
    const next = await h2(session, { ':path': '/after' });
    assert.equal(next.status, 200);
  } finally {
    session.close();
    await gh.close();
    await app.close();
  }
});

test('an answer given before the upload ends does not wait for the rest of it', async () => {
  const app = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0", h2c: true }]
limits: { maxRequestBody: 1kb }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: "${app.url}" }] } }
`);
  const session = connect(gh.url());
  try {
    // Too large by Content-Length: 413 at once, and the stream is reset (NO_ERROR) once it is out.
    const s = session.request({ ':path': '/up', ':method': 'POST', 'content-length': String(10 << 20) });
    s.on('error', () => {});
    s.write(Buffer.alloc(16 * 1024));
    const [head] = (await once(s, 'response')) as [IncomingHttpHeaders];
    assert.equal(Number(head[':status']), 413);
    s.resume();
    await once(s, 'close');
    assert.equal(s.rstCode, constants.NGHTTP2_NO_ERROR);
    assert.equal(app.seen.length, 0, 'nothing went upstream');
    const next = await h2(session, { ':path': '/after' });
    assert.equal(next.status, 200);
  } finally {
    session.close();
    await gh.close();
    await app.close();
  }
});

test('a TLS listener on engine: node serves HTTP/1.1 through node:http and HTTP/2 through streams, once each', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with it')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const cert = makeCert(dir, ca, 'h2.example.test', ['h2.example.test']);
  const app = await origin();
  const gh = await start(`
listeners:
  - name: secure
    address: "127.0.0.1:0"
    engine: node
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }] }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: "${app.url}" }] } }
`);
  const session = connect(gh.url(), { ca: ca.cert, servername: 'h2.example.test' });
  const agent = new Agent({ allowH2: false, connect: { ca: ca.cert, servername: 'h2.example.test' } });
  try {
    const r2 = await h2(session, { ':path': '/two', ':authority': 'h2.example.test' });
    assert.equal(r2.status, 200);
    const r1 = await request(`${gh.url()}/one`, { dispatcher: agent, headers: { host: 'h2.example.test' } });
    assert.equal(r1.statusCode, 200);
    await r1.body.dump();
    await until(() => gh.log.entries().length >= 2, 2000, 'two log lines');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      gh.log.entries().map((e) => e.protocol),
      ['HTTP/2.0', 'HTTP/1.1'],
    );
    assert.equal(app.seen.length, 2, 'each request reached the upstream once');
  } finally {
    session.close();
    await agent.close();
    await gh.close();
    await app.close();
  }
});

test('backpressure both ways: a client that does not read holds the upstream, an upstream that does not read holds the client', async () => {
  const SIZE = 64 << 20;
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  let uploaded = 0;
  let release: () => void = () => {};
  const reading = new Promise<void>((r) => {
    release = r;
  });
  const app = await origin((req, res) => {
    if (req.url === '/down') {
      res.writeHead(200, { 'content-length': String(SIZE) });
      const pump = () => {
        while (written < SIZE) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    // /up: read nothing until released.
    void reading.then(() => {
      req.on('data', (c: Buffer) => {
        uploaded += c.length;
      });
      req.on('end', () => res.end(String(uploaded)));
    });
  });
  const gh = await h2cGatehouse(
    `{ u: { targets: [{ url: "${app.url}" }] } }`,
    '[{ name: all, upstream: u, maxRequestBody: 100mb }]',
  );
  const session = connect(gh.url());
  try {
    // Download: the client reads nothing for a while; the origin must be held back far below 64 MiB.
    const down = session.request({ ':path': '/down', ':authority': 'h2.test' });
    down.pause();
    await once(down, 'response');
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(written < SIZE / 2, `the origin wrote ${written} bytes to a client that read none`);
    let got = 0;
    down.on('data', (c: Buffer) => {
      got += c.length;
    });
    down.resume();
    await once(down, 'end');
    assert.equal(got, SIZE);

    // Upload: the origin reads nothing for a while; the client must be held back.
    const up = session.request({ ':path': '/up', ':method': 'POST', ':authority': 'h2.test' });
    let sent = 0;
    const sending = (async () => {
      for (let n = 0; n < SIZE; n += chunk.length) {
        if (!up.write(chunk)) await once(up, 'drain');
        sent += chunk.length;
      }
      up.end();
    })();
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(sent < SIZE / 2, `the client could send ${sent} bytes to an origin that read none`);
    release();
    await sending;
    const chunks: Buffer[] = [];
    up.on('data', (c: Buffer) => chunks.push(c));
    await once(up, 'end');
    assert.equal(Buffer.concat(chunks).toString(), String(SIZE));
  } finally {
    session.close();
    await gh.close();
    await app.close();
  }
});
