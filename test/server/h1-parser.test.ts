// Our HTTP/1.1 request parser: its API and flags, limits and statuses, and the property that any split
// of a byte stream into pieces parses exactly as the whole stream does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import {
  BODY_CHUNKED,
  BODY_LENGTH,
  BODY_MASK,
  BODY_NONE,
  ERROR,
  FLAG_CONNECT,
  FLAG_EXPECT_CONTINUE,
  FLAG_EXPECT_OTHER,
  FLAG_KEEP_ALIVE,
  FLAG_UPGRADE,
  type H1Handler,
  type H1Limits,
  H1Parser,
} from '../../src/server/h1/parser.ts';
import { INVALID, prng, UPGRADES, VALID } from '../helpers/h1-corpus.ts';
import { cut, DEFAULT_LIMITS, type H1Event, parsePieces, parseWhole } from '../helpers/h1-record.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

function head(events: H1Event[], i = 0) {
  const heads = events.filter((e) => e.type === 'head');
  return heads[i] as Extract<H1Event, { type: 'head' }>;
}

function errorOf(events: H1Event[]) {
  return events.find((e) => e.type === 'error') as Extract<H1Event, { type: 'error' }> | undefined;
}

describe('H1Parser events and flags', () => {
  it('emits a GET head with raw headers as sent and completes it', () => {
    const events = parseWhole(b('GET /a?b HTTP/1.1\r\nHost: x\r\nX-Case: MiXeD  \r\naccept:\t*/*\r\n\r\n'));
    assert.deepEqual(events, [
      {
        type: 'head',
        method: 'GET',
        target: '/a?b',
        versionMinor: 1,
        rawHeaders: ['Host', 'x', 'X-Case', 'MiXeD', 'accept', '*/*'],
        flags: FLAG_KEEP_ALIVE | BODY_NONE,
        contentLength: 0,
      },
      { type: 'complete' },
    ]);
  });

  it('keep-alive: 1.1 unless close, 1.0 only with keep-alive', () => {
    const ka = (s: string) => (head(parseWhole(b(s))).flags & FLAG_KEEP_ALIVE) !== 0;
    assert.equal(ka('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), true);
    assert.equal(ka('GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n'), false);
    assert.equal(ka('GET / HTTP/1.1\r\nHost: a\r\nConnection: te, close\r\n\r\n'), false);
    assert.equal(ka('GET / HTTP/1.0\r\n\r\n'), false);
    assert.equal(ka('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n'), true);
    assert.equal(ka('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n'), false);
  });

  it('body kinds and content length', () => {
    const cl = head(parseWhole(b('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc')));
    assert.equal(cl.flags & BODY_MASK, BODY_LENGTH);
    assert.equal(cl.contentLength, 3);
    const zero = head(parseWhole(b('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n')));
    assert.equal(zero.flags & BODY_MASK, BODY_NONE);
    assert.equal(zero.contentLength, 0);
    const ch = head(
      parseWhole(b('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')),
    );
    assert.equal(ch.flags & BODY_MASK, BODY_CHUNKED);
    assert.equal(ch.contentLength, -1);
  });

  it('expect flags (HTTP/1.1 only)', () => {
    const f = (s: string) => head(parseWhole(b(s))).flags;
    assert.ok(
      f('PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx') &
        FLAG_EXPECT_CONTINUE,
    );
    assert.ok(f('GET / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n') & FLAG_EXPECT_OTHER);
    assert.equal(
      f('GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n') & (FLAG_EXPECT_CONTINUE | FLAG_EXPECT_OTHER),
      0,
    );
  });

  it('chunked body pieces are zero-copy views of the input, trailers come before complete', () => {
    const input = b(
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n',
    );
    const seen: Buffer[] = [];
    const order: string[] = [];
    const handler: H1Handler = {
      onHead: () => order.push('head'),
      onBody: (c) => {
        seen.push(c);
        order.push('body');
      },
      onTrailers: (t) => order.push(`trailers ${t.join(':')}`),
      onMessageComplete: () => order.push('complete'),
    };
    const p = new H1Parser(handler, DEFAULT_LIMITS);
    assert.equal(p.execute(input), input.length);
    assert.deepEqual(order, ['head', 'body', 'trailers X-T:1', 'complete']);
    assert.equal(seen[0].buffer, input.buffer, 'a view, not a copy');
    assert.equal(seen[0].toString(), 'hello');
  });

  it('pipelined requests come one after another', () => {
    const events = parseWhole(
      b(
        'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nxGET /3 HTTP/1.1\r\nHost: a\r\n\r\n',
      ),
    );
    assert.deepEqual(
      events.map((e) => (e.type === 'head' ? e.target : e.type)),
      ['/1', 'complete', '/2', 'body', 'complete', '/3', 'complete'],
    );
  });

  it('pause() stops after the current event; the caller gives the rest again after resume()', () => {
    const input = b('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
    const targets: string[] = [];
    let p!: H1Parser;
    const handler: H1Handler = {
      onHead: (_m, t) => targets.push(t),
      onBody: () => {},
      onTrailers: () => {},
      onMessageComplete: () => p.pause(),
    };
    p = new H1Parser(handler, DEFAULT_LIMITS);
    const n = p.execute(input);
    assert.equal(n, input.length / 2);
    assert.deepEqual(targets, ['/1']);
    assert.equal(p.execute(input.subarray(n)), 0, 'paused: nothing consumed');
    p.resume();
    assert.equal(p.execute(input.subarray(n)), input.length / 2);
    assert.deepEqual(targets, ['/1', '/2']);
  });

  it('upgrade: the parser stops after the message; the rest is the new protocol; resume() if declined', () => {
    const input = b(
      'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello',
    );
    const events: string[] = [];
    const handler: H1Handler = {
      onHead: (_m, _t, _v, _r, flags) => events.push(flags & FLAG_UPGRADE ? 'upgrade' : 'plain'),
      onBody: () => {},
      onTrailers: () => {},
      onMessageComplete: () => events.push('complete'),
    };
    const p = new H1Parser(handler, DEFAULT_LIMITS);
    const n = p.execute(input);
    assert.equal(input.subarray(n).toString('latin1'), '\x81\x05hello');
    assert.ok(p.upgraded);
    assert.deepEqual(events, ['upgrade', 'complete']);
    assert.equal(p.finish(), 0, 'an upgraded connection may end');

    // declined: parse HTTP again
    const q = new H1Parser(handler, DEFAULT_LIMITS);
    const two = b(
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n',
    );
    const m = q.execute(two);
    q.resume();
    assert.equal(q.execute(two.subarray(m)), two.length - m);
    assert.deepEqual(events.slice(2), ['upgrade', 'complete', 'plain', 'complete']);
  });

  it('CONNECT is an upgrade with FLAG_CONNECT', () => {
    const h = head(parseWhole(b('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')));
    assert.equal(h.target, 'example.com:443');
    assert.ok(h.flags & FLAG_UPGRADE && h.flags & FLAG_CONNECT);
  });

  it('finish(): clean between requests, an error in the middle of one', () => {
    const rec: H1Handler = { onHead() {}, onBody() {}, onTrailers() {}, onMessageComplete() {} };
    const p = new H1Parser(rec, DEFAULT_LIMITS);
    p.execute(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    assert.ok(p.idle);
    assert.equal(p.finish(), 0);
    const q = new H1Parser(rec, DEFAULT_LIMITS);
    q.execute(b('GET / HT'));
    assert.equal(q.finish(), ERROR);
    assert.equal(q.errorCode, 'INCOMPLETE');
    assert.equal(q.errorStatus, 400);
    q.reset();
    const again = b('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(q.execute(again), again.length);
    assert.ok(q.idle);
  });

  it('an error is final: execute keeps returning ERROR', () => {
    const rec: H1Handler = { onHead() {}, onBody() {}, onTrailers() {}, onMessageComplete() {} };
    const p = new H1Parser(rec, DEFAULT_LIMITS);
    assert.equal(p.execute(b('GET / HTTP/1.1\nHost: a\r\n\r\n')), ERROR);
    assert.equal(p.execute(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), ERROR);
  });
});

describe('H1Parser statuses and limits', () => {
  const status = (s: string | Buffer, limits: H1Limits = DEFAULT_LIMITS) => {
    const bytes = typeof s === 'string' ? b(s) : s;
    const whole = errorOf(parseWhole(bytes, limits));
    const bytewise = errorOf(
      parsePieces(
        cut(
          bytes,
          Array.from({ length: bytes.length - 1 }, (_, i) => i + 1),
        ),
        limits,
      ),
    );
    assert.deepEqual(bytewise, whole, 'the same error when fed byte by byte');
    return whole ? `${whole.status} ${whole.code}` : 'ok';
  };
  const small: H1Limits = { maxHeadBytes: 200, maxUriLength: 50, maxHeaderCount: 3, maxBodyBytes: 10 };

  it('505 for a well-formed unsupported version, 400 for a malformed one', () => {
    assert.equal(status('GET / HTTP/1.2\r\nHost: a\r\n\r\n'), '505 UNSUPPORTED_VERSION');
    assert.equal(status('GET / HTTP/2.0\r\nHost: a\r\n\r\n'), '505 UNSUPPORTED_VERSION');
    assert.equal(status('GET / HTTP/1.x\r\nHost: a\r\n\r\n'), '400 INVALID_VERSION');
  });

  it('501 for an unknown method or transfer coding, 400 when malformed', () => {
    assert.equal(status('BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n'), '501 UNKNOWN_METHOD');
    assert.match(status('G ET / HTTP/1.1\r\nHost: a\r\n\r\n'), /^400 /);
    assert.equal(
      status('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'),
      '501 UNSUPPORTED_TRANSFER_ENCODING',
    );
    assert.equal(
      status('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n'),
      '400 INVALID_TRANSFER_ENCODING',
    );
  });

  it('414 for a long target, whole or in pieces', () => {
    assert.equal(status(`GET /${'a'.repeat(50)} HTTP/1.1\r\nHost: a\r\n\r\n`, small), '414 URI_TOO_LONG');
    assert.equal(status(`GET /${'a'.repeat(49)} HTTP/1.1\r\nHost: a\r\n\r\n`, small), 'ok');
    assert.equal(status(`GET /${'a'.repeat(5000)}`, small), '414 URI_TOO_LONG', 'before the line ends');
  });

  it('431 for a large head or too many fields', () => {
    const fill = (n: number) => `GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(n)}\r\n\r\n`;
    const fits = 200 - fill(0).length;
    assert.equal(status(fill(fits), small), 'ok', 'exactly maxHeadBytes');
    assert.equal(status(fill(fits + 1), small), '431 HEAD_TOO_LARGE');
    assert.equal(status(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(1000)}`, small), '431 HEAD_TOO_LARGE');
    assert.equal(status('GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n', small), 'ok');
    assert.equal(
      status('GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n', small),
      '431 TOO_MANY_HEADERS',
    );
  });

  it('the trailer section has the same limits', () => {
    const t = (n: number) =>
      `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'T: 1\r\n'.repeat(n)}\r\n`;
    assert.equal(status(t(3), small), 'ok');
    assert.equal(status(t(4), small), '431 TOO_MANY_HEADERS');
  });

  it('413 for a body over maxBodyBytes (Content-Length up front, chunked as it comes)', () => {
    assert.equal(
      status(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n${'x'.repeat(11)}`, small),
      '413 BODY_TOO_LARGE',
    );
    assert.equal(
      status(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n${'x'.repeat(10)}`, small),
      'ok',
    );
    const ch =
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n';
    assert.equal(status(ch, small), '413 BODY_TOO_LARGE');
  });

  it('setBodyLimit from onHead applies to that request only', () => {
    let p!: H1Parser;
    const completed: string[] = [];
    const handler: H1Handler = {
      onHead: (_m, t) => {
        if (t === '/small') p.setBodyLimit(2);
      },
      onBody() {},
      onTrailers() {},
      onMessageComplete: () => completed.push('done'),
    };
    p = new H1Parser(handler, DEFAULT_LIMITS);
    const ok = b('POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc');
    assert.equal(p.execute(ok), ok.length);
    assert.equal(p.execute(b('POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc')), ERROR);
    assert.equal(p.errorStatus, 413);
    assert.deepEqual(completed, ['done']);
  });

  it('a line that cannot be one fails at once, not at the head limit', () => {
    const rec: H1Handler = { onHead() {}, onBody() {}, onTrailers() {}, onMessageComplete() {} };
    const p = new H1Parser(rec, DEFAULT_LIMITS);
    assert.equal(p.execute(b('GET / HTTP/1.1\r\nHost: a\r\nX: a')), 29);
    assert.equal(p.execute(b('\0')), ERROR, 'a NUL in a value, its line still open');
    const q = new H1Parser(rec, DEFAULT_LIMITS);
    assert.equal(q.execute(b('\x16\x03\x01')), ERROR, 'a TLS ClientHello');
  });

  it('more fields than one decode batch holds (128), whole and in pieces', () => {
    const limits = { ...DEFAULT_LIMITS, maxHeaderCount: 400 };
    const names = Array.from({ length: 300 }, (_, i) => `X-Field-${i}`);
    const bytes = b(`GET / HTTP/1.1\r\nHost: a\r\n${names.map((n, i) => `${n}: v${i}\r\n`).join('')}\r\n`);
    const whole = parseWhole(bytes, limits);
    assert.deepEqual(head(whole).rawHeaders, ['Host', 'a', ...names.flatMap((n, i) => [n, `v${i}`])]);
    const rand = prng(3);
    for (let r = 0; r < 50; r++) {
      const at: number[] = [];
      for (let p = 1 + Math.floor(rand() * 300); p < bytes.length; p += 1 + Math.floor(rand() * 600))
        at.push(p);
      assert.deepEqual(parsePieces(cut(bytes, at), limits), whole, `split at ${at.join(',')}`);
    }
  });

  it('1.1 needs a Host unless requireHost is off', () => {
    assert.equal(status('GET / HTTP/1.1\r\n\r\n'), '400 MISSING_HOST');
    assert.equal(status('GET / HTTP/1.1\r\n\r\n', { ...DEFAULT_LIMITS, requireHost: false }), 'ok');
  });
});

// --- the split property -----------------------------------------------------------------------------

const s = (...parts: string[]) => b(parts.join(''));
const PIPELINE = [
  'GET /a HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
  'PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n',
  'GET /d HTTP/1.1\r\nHost: x\r\n\r\n',
];
/** Streams for the exhaustive 2- and 3-piece splits (kept short: 3 pieces is quadratic). */
const STREAMS: { name: string; bytes: Buffer }[] = [
  { name: 'pipelined GET, CL POST, chunked POST with trailers, GET', bytes: s(...PIPELINE) },
  {
    name: 'chunked with extensions and two trailers',
    bytes: s(
      'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      'a;n="q;\\"x"\r\n0123456789\r\n1\r\nZ\r\n0\r\nX-One: 1\r\nX-Two:  two \r\n\r\n',
    ),
  },
  {
    name: 'leading CRLF, HTTP/1.0 keep-alive, CL body, close',
    bytes: s(
      '\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
      'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz',
      'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ),
  },
  {
    name: 'upgrade with bytes after it',
    bytes: s('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi'),
  },
  {
    name: 'invalid: smuggled bare-LF request after a body',
    bytes: s('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\nHost: x\n\n'),
  },
];

describe('any split of a byte stream parses as the whole', () => {
  for (const { name, bytes } of STREAMS) {
    it(`${name}: every split into 2 and 3 pieces`, () => {
      const whole = parseWhole(bytes);
      assert.ok(whole.some((e) => e.type === 'complete'));
      for (let i = 1; i < bytes.length; i++) {
        assert.deepEqual(parsePieces(cut(bytes, [i])), whole, `split at ${i}`);
      }
      for (let i = 1; i < bytes.length; i++) {
        for (let j = i + 1; j < bytes.length; j++) {
          const got = parsePieces(cut(bytes, [i, j]));
          if (!isDeepStrictEqual(got, whole)) assert.deepEqual(got, whole, `split at ${i}, ${j}`);
        }
      }
    });
  }

  it('every corpus case: all 2-piece splits and 200 random splits (seeded) give the same events', () => {
    const rand = prng(0x5eed);
    let runs = 0;
    for (const { name, bytes } of [...VALID, ...UPGRADES, ...INVALID, ...STREAMS]) {
      const whole = parseWhole(bytes);
      for (let i = 1; i < bytes.length; i++) {
        const got = parsePieces(cut(bytes, [i]));
        if (!isDeepStrictEqual(got, whole)) assert.deepEqual(got, whole, `${name}: split at ${i}`);
        runs++;
      }
      for (let r = 0; r < 200; r++) {
        const at: number[] = [];
        // pieces of 1 to ~64 bytes, sometimes one large piece
        for (
          let p = 1 + Math.floor(rand() * 64);
          p < bytes.length;
          p += 1 + Math.floor(rand() * (rand() < 0.1 ? 512 : 64))
        ) {
          at.push(p);
        }
        const got = parsePieces(cut(bytes, at));
        if (!isDeepStrictEqual(got, whole)) assert.deepEqual(got, whole, `${name}: split at ${at.join(',')}`);
        runs++;
      }
    }
    assert.ok(runs > 10_000);
  });

  it('a valid stream ends cleanly; cut short anywhere, finish() reports it', () => {
    const bytes = STREAMS[0].bytes;
    const whole = parseWhole(bytes);
    assert.equal(errorOf(whole), undefined);
    // offsets where a message ends: there, finishing is clean; anywhere else it is not
    const boundaries = new Set<number>();
    let acc = 0;
    for (const part of PIPELINE) {
      acc += part.length;
      boundaries.add(acc);
    }
    for (let i = 1; i < bytes.length; i++) {
      const err = errorOf(parsePieces([bytes.subarray(0, i)]));
      if (boundaries.has(i)) assert.equal(err, undefined, `clean end at ${i}`);
      else assert.equal(err?.code, 'INCOMPLETE', `cut at ${i}`);
    }
  });
});
