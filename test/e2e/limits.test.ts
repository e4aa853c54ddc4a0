// Limits, timeouts and the error answers, against real sockets.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import { classifyUpstreamError, RETRY_ON } from '../../src/pipeline/errors.ts';
import { type Running, start, until } from '../helpers/gatehouse.ts';
import { raw, send } from '../helpers/http.ts';
import { freePort } from '../helpers/net.ts';
import { type Origin, origin } from '../helpers/origin.ts';

let echo: Origin;
let silent: Origin;
let stalling: Origin;
let slowReq: IncomingMessage[] = [];
let closedPort: number;
let gh: Running;

before(async () => {
  echo = await origin();
  silent = await origin((req) => {
    slowReq.push(req); // never answers
  });
  stalling = await origin((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part;');
    // ...and never the rest
  });
  closedPort = await freePort();
  gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
limits:
  maxRequestBody: 1kb
  maxRequestHeaders: 2kb
  maxUriLength: 1kb
  headerTimeout: 400ms
  keepAliveTimeout: 300ms
  bodyTimeout: 400ms
routes:
  - { name: big, match: { pathPrefix: /big }, maxRequestBody: 100kb, upstream: echo }
  - { name: silent, match: { pathPrefix: /silent }, upstream: silent }
  - { name: stall, match: { pathPrefix: /stall }, upstream: stalling }
  - { name: dead, match: { pathPrefix: /dead }, upstream: dead }
  - { name: failover, match: { pathPrefix: /failover }, upstream: failover }
  - { name: echo, match: { pathPrefix: /echo }, upstream: echo }
upstreams:
  echo: { targets: [{ url: "${echo.url}" }] }
  silent: { targets: [{ url: "${silent.url}" }], timeouts: { response: 300ms } }
  stalling: { targets: [{ url: "${stalling.url}" }], timeouts: { idle: 300ms } }
  dead: { targets: [{ url: "http://127.0.0.1:${closedPort}" }] }
  failover:
    targets: [{ url: "http://127.0.0.1:${closedPort}" }, { url: "${echo.url}" }]
`);
});
after(async () => {
  await gh.close();
  for (const r of slowReq) r.socket.destroy();
  await Promise.all([echo.close(), silent.close(), stalling.close()]);
});

const statusOf = (reply: string) => Number(reply.slice(9, 12));

test('a body over the limit is refused with 413, by Content-Length before anything is sent upstream', async () => {
  const n = echo.seen.length;
  const r = await send(`${gh.url()}/echo`, { method: 'POST', body: Buffer.alloc(2048) });
  assert.equal(r.status, 413);
  assert.match(r.body, /body_too_large/);
  assert.equal(echo.seen.length, n);
  // A route may raise the limit.
  const ok = await send(`${gh.url()}/big`, { method: 'POST', body: Buffer.alloc(50_000) });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /"bytes":50000/);
});

test('a chunked body over the limit is refused with 413 too', async () => {
  const chunk = `400\r\n${'y'.repeat(1024)}\r\n`;
  const reply = await raw(
    gh.url(),
    `POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}0\r\n\r\n`,
  );
  assert.equal(statusOf(reply), 413);
  assert.match(reply, /connection: close/i);
  const fine = await raw(
    gh.url(),
    `POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk}0\r\n\r\n`,
  );
  assert.equal(statusOf(fine), 200);
});

test('headers over the limit get 431, a URI over the limit 414, a malformed request 400', async () => {
  const big = await raw(gh.url(), `GET /echo HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(2100)}\r\n\r\n`);
  assert.equal(statusOf(big), 431);
  const huge = await raw(gh.url(), `GET /echo HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`);
  assert.equal(statusOf(huge), 431, 'beyond what the parser accepts at all');
  const long = await raw(gh.url(), `GET /echo?${'q'.repeat(1100)} HTTP/1.1\r\nHost: h\r\n\r\n`);
  assert.equal(statusOf(long), 414);
  const bad = await raw(gh.url(), 'GET /echo HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n');
  assert.equal(statusOf(bad), 400);
  const smuggle = await raw(
    gh.url(),
    'POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  );
  assert.equal(
    statusOf(smuggle),
    400,
    'Content-Length with Transfer-Encoding is refused (request smuggling)',
  );
  const noHost = await raw(gh.url(), 'GET /echo HTTP/1.1\r\n\r\n');
  assert.equal(statusOf(noHost), 400);
});

test('a client that sends its headers too slowly gets 408', async () => {
  const reply = await raw(gh.url(), 'GET /echo HTTP/1.1\r\nHost: h\r\n', 5000);
  assert.equal(statusOf(reply), 408);
});

test('a client that stalls while sending its body gets 408', async () => {
  const reply = await raw(
    gh.url(),
    'POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789',
    5000,
  );
  assert.equal(statusOf(reply), 408);
  assert.match(reply, /request_timeout/);
  assert.match(reply, /connection: close/i);
  await until(() => gh.log.entries().some((e) => e.route === 'big' && e.status === 408), 3000, 'log line');
  const line = gh.log.entries().find((e) => e.route === 'big' && e.status === 408);
  assert.equal(line?.reason, 'request_timeout', 'logged as the timeout, not as the client leaving');
});

test('an idle keep-alive connection is closed after keepAliveTimeout', async () => {
  const t0 = Date.now();
  const reply = await raw(gh.url(), 'GET /echo HTTP/1.1\r\nHost: h\r\n\r\n', 5000);
  assert.equal(statusOf(reply), 200);
  assert.ok(Date.now() - t0 < 4000, 'the server closed the connection itself');
});

test('an upstream that does not answer in time gives 504 upstream_timeout', async () => {
  const r = await send(`${gh.url()}/silent`, { headers: { accept: 'application/json' } });
  assert.equal(r.status, 504);
  const body = JSON.parse(r.body);
  assert.equal(body.reason, 'upstream_timeout');
  assert.equal(body.requestId, r.headers['x-request-id']);
  assert.match(r.headers['proxy-status'] as string, /error=http_response_timeout/);
});

test('an upstream that stalls mid-body has its response cut, not completed', async () => {
  const reply = await raw(gh.url(), 'GET /stall HTTP/1.1\r\nHost: h\r\n\r\n', 5000);
  assert.equal(statusOf(reply), 200);
  assert.match(reply, /first part;/);
  assert.doesNotMatch(reply, /\r\n0\r\n\r\n$/, 'no terminating chunk: the client can tell it is incomplete');
  await until(
    () => gh.log.entries().some((e) => e.route === 'stall' && e.reason === 'upstream_timeout'),
    3000,
    'log line',
  );
});

test('an unreachable upstream gives 502 with the reason and request id, and no internal address', async () => {
  const html = await send(`${gh.url()}/dead`, { headers: { accept: 'text/html' } });
  assert.equal(html.status, 502);
  assert.match(html.headers['content-type'] as string, /text\/html/);
  assert.match(html.body, /upstream_connect_failed/);
  assert.ok(html.body.includes(html.headers['x-request-id'] as string));
  assert.doesNotMatch(html.body, /127\.0\.0\.1|ECONNREFUSED|at .*\.ts/);
  const js = await send(`${gh.url()}/dead`, { headers: { accept: 'application/json' } });
  assert.deepEqual(Object.keys(JSON.parse(js.body)), ['status', 'error', 'reason', 'requestId']);
});

test('a connection failure on one target is retried on another', async () => {
  for (let i = 0; i < 6; i++) {
    const r = await send(`${gh.url()}/failover/${i}`);
    assert.equal(r.status, 200);
  }
  const attempts = gh.log
    .entries()
    .filter((e) => e.route === 'failover')
    .map((e) => e.attempts);
  assert.ok(attempts.includes(2), 'some requests needed a second attempt');
});

test('no route: 404 from Gatehouse', async () => {
  const r = await send(`${gh.url()}/nothing-here`, { headers: { accept: 'application/json' } });
  assert.equal(r.status, 404);
  assert.equal(JSON.parse(r.body).reason, 'route_not_found');
});

test('a client that goes away aborts the upstream request', async () => {
  slowReq = [];
  // raw() destroys its socket after 300 ms, while the origin is still thinking.
  const reply = raw(gh.url(), 'GET /silent/abort HTTP/1.1\r\nHost: h\r\n\r\n', 300);
  await until(() => slowReq.length === 1, 3000, 'origin to receive the request');
  const upstreamGone = new Promise<boolean>((resolve) => {
    slowReq[0].socket.once('close', () => resolve(true));
    setTimeout(() => resolve(false), 3000);
  });
  await reply;
  assert.equal(await upstreamGone, true, 'the upstream connection was closed when the client left');
  await until(
    () => gh.log.entries().some((e) => e.path === '/silent/abort' && e.reason === 'client_closed'),
    3000,
    'log line',
  );
});

test('upstream errors are classified by code, never by message text', () => {
  const c = (code: string) => classifyUpstreamError(Object.assign(new Error('x'), { code })).reason;
  assert.equal(c('UND_ERR_CONNECT_TIMEOUT'), 'upstream_connect_timeout');
  assert.equal(c('ECONNREFUSED'), 'upstream_connect_failed');
  assert.equal(c('UND_ERR_HEADERS_TIMEOUT'), 'upstream_timeout');
  assert.equal(c('UND_ERR_BODY_TIMEOUT'), 'upstream_timeout');
  assert.equal(c('UND_ERR_SOCKET'), 'upstream_reset');
  assert.equal(c('HPE_INVALID_CHUNK_SIZE'), 'upstream_protocol_error');
  assert.equal(c('SOMETHING_ELSE'), 'internal');
  // The error table says which retry condition each reason is; the retry policy decides from there.
  assert.equal(RETRY_ON[c('ECONNREFUSED')], 'connect-failure');
  assert.equal(RETRY_ON[c('UND_ERR_SOCKET')], 'reset');
  assert.equal(RETRY_ON[c('HPE_INVALID_CHUNK_SIZE')], undefined);
});
