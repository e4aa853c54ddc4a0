// The response parser's own contract, beyond what the differential test compares with llhttp: what it
// tells the connection (keep-alive, the target's Keep-Alive timeout, the framing), stopping when a
// handler returns false, and the codes for a response cut short.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BODY_CHUNKED,
  BODY_CLOSE,
  BODY_LENGTH,
  BODY_NONE,
  ERROR,
  type H1ResponseHandler,
  H1ResponseParser,
  NO_TRAILERS,
  type ResponseHeaders,
} from '../../src/upstream/h1pool/parser.ts';

class Rec implements H1ResponseHandler {
  heads: number[] = [];
  body = '';
  trailers: ResponseHeaders | null = null;
  stopAfterHead = false;
  stopAfterBody = false;
  onHead(status: number): boolean {
    this.heads.push(status);
    return !this.stopAfterHead;
  }
  onBody(chunk: Buffer): boolean {
    this.body += chunk.toString('latin1');
    return !this.stopAfterBody;
  }
  onComplete(trailers: ResponseHeaders): void {
    this.trailers = trailers;
  }
}

function parse(text: string, head = false) {
  const rec = new Rec();
  const p = new H1ResponseParser(rec);
  p.start(head);
  const bytes = Buffer.from(text, 'latin1');
  const r = p.execute(bytes, 0);
  return { p, rec, r, bytes };
}

test('keep-alive and framing, as the connection needs them', () => {
  const cases: [string, boolean, number, boolean?][] = [
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', true, BODY_LENGTH],
    ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok', false, BODY_LENGTH],
    ['HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok', false, BODY_LENGTH],
    ['HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', false, BODY_LENGTH],
    ['HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok', true, BODY_LENGTH],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', true, BODY_CHUNKED],
    ['HTTP/1.1 200 OK\r\n\r\n', false, BODY_CLOSE],
    ['HTTP/1.1 204 No Content\r\n\r\n', true, BODY_NONE],
    ['HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n', false, BODY_NONE],
    ['HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n', false, BODY_NONE],
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', true, BODY_NONE, true],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', true, BODY_NONE, true],
  ];
  for (const [text, keepAlive, framing, head] of cases) {
    const { p, rec } = parse(text, head);
    assert.equal(p.keepAlive, keepAlive, text);
    assert.equal(p.framing, framing, text);
    if (framing !== BODY_CLOSE) assert.equal(p.done, true, text);
    assert.equal(rec.heads.length, 1);
  }
});

test("the target's Keep-Alive timeout, read as undici reads it", () => {
  const timeout = (v: string) =>
    parse(`HTTP/1.1 200 OK\r\nKeep-Alive: ${v}\r\nContent-Length: 0\r\n\r\n`).p.keepAliveTimeout;
  assert.equal(timeout('timeout=5'), 5);
  assert.equal(timeout('max=100, timeout=7'), 7);
  assert.equal(timeout('Timeout=3, max=1'), 3);
  assert.equal(timeout(' \ttimeout=12'), 12);
  assert.equal(timeout('max=100'), -1);
  assert.equal(timeout('timeout='), -1);
  assert.equal(timeout('xtimeout=5'), -1);
  assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').p.keepAliveTimeout, -1);
});

test('a handler returning false stops execute there; the rest is given again', () => {
  const rec = new Rec();
  const p = new H1ResponseParser(rec);
  p.start(false);
  const bytes = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef', 'latin1');
  rec.stopAfterHead = true;
  const r1 = p.execute(bytes, 0);
  assert.equal(r1, bytes.indexOf('abc'));
  assert.equal(rec.body, '');
  rec.stopAfterHead = false;
  rec.stopAfterBody = true;
  const r2 = p.execute(bytes, r1);
  assert.equal(r2, bytes.length);
  assert.equal(rec.body, 'abcdef');
  assert.equal(rec.trailers, null, 'not complete while stopped after the last bytes');
  assert.equal(p.execute(Buffer.alloc(0), 0), 0);
  assert.equal(rec.trailers, NO_TRAILERS);
  assert.equal(p.done, true);
});

test('execute stops where the response ends: what follows is not its', () => {
  const { p, r, bytes } = parse('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n');
  assert.equal(p.done, true);
  assert.equal(r, bytes.indexOf('xHTTP') + 1);
});

test('the end of the connection: a close-delimited body ends, anything else cut short is an error', () => {
  const close = parse('HTTP/1.1 200 OK\r\n\r\nto the end');
  assert.equal(close.p.finish(), 0);
  assert.equal(close.rec.body, 'to the end');
  assert.equal(close.rec.trailers, NO_TRAILERS);
  const cases: [string, string][] = [
    ['', 'UND_ERR_SOCKET'],
    ['HTTP/1.1 200 OK\r\nContent-', 'UND_ERR_SOCKET'],
    ['HTTP/1.1 100 Continue\r\n\r\n', 'UND_ERR_SOCKET'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc', 'UND_ERR_SOCKET'],
    [
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 9\r\n\r\nabc',
      'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
    ],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 'UND_ERR_SOCKET'],
    [
      'HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab',
      'HPE_INVALID_EOF_STATE',
    ],
  ];
  for (const [text, code] of cases) {
    const { p } = parse(text);
    assert.equal(p.finish(), ERROR, text);
    assert.equal(p.errorCode, code, text);
  }
});

test('a garbage start fails at once, not at the size limit', () => {
  for (const text of ['SSH-2.0-x', '\x16\x03\x01\x02\x00', 'HTTP/2', 'HTTP/1.1 200 OK\n']) {
    const { r, p } = parse(text);
    assert.equal(r, ERROR, JSON.stringify(text));
    assert.match(p.errorCode, /^HPE_/);
  }
  // a partial but plausible head waits
  assert.notEqual(parse('HTTP/1.1 200 OK\r\nX-A: 1').r, ERROR);
});

test('the head limit counts 1xx heads and trailers with the final head', () => {
  const rec = new Rec();
  const p = new H1ResponseParser(rec, 100);
  p.start(false);
  const info = `HTTP/1.1 103 Early Hints\r\nLink: ${'a'.repeat(40)}\r\n\r\n`;
  const fin = `HTTP/1.1 200 OK\r\nX: ${'b'.repeat(40)}\r\n\r\n`;
  assert.equal(p.execute(Buffer.from(info + fin), 0), ERROR);
  assert.equal(p.errorCode, 'UND_ERR_HEADERS_OVERFLOW');
});

test('header names: lower-case, known names shared, prototype names as own properties', () => {
  const rec = new Rec();
  let headers: ResponseHeaders = {};
  rec.onHead = (_s: number, _r?: unknown, h?: unknown) => {
    headers = h as ResponseHeaders;
    return true;
  };
  const p = new H1ResponseParser(rec);
  p.start(false);
  const text =
    'HTTP/1.1 200 OK\r\nCONTENT-TYPE: a\r\nX-Custom-Name: b\r\n__proto__: c\r\nconstructor: d\r\n\r\n';
  p.execute(Buffer.from(text), 0);
  assert.deepEqual(Object.keys(headers), ['content-type', 'x-custom-name', '__proto__', 'constructor']);
  assert.equal(Object.getPrototypeOf(headers), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value, 'c');
  assert.equal(headers.constructor as unknown, 'd');
});
