// Differential test: our HTTP/1.1 response parser (src/upstream/h1pool/parser.ts) against Node's own
// client (llhttp, default non-lenient settings), run for real: a `net` server on 127.0.0.1 writes each
// raw response and closes, and a `node:http` request reads it. Ours must refuse whatever node refuses;
// where both accept, both must see the same heads (1xx included), headers, body and trailers. Where ours
// refuses what node accepts, the case must be in STRICTER with the reason; an entry that no longer
// applies fails too, so the list stays true.
//
// Plus the chunk-split property: every valid response, split into two pieces at every position and
// into random pieces (fixed seed), parses exactly as it does whole.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  ERROR,
  type H1ResponseHandler,
  H1ResponseParser,
  type ResponseHeaders,
} from '../../src/upstream/h1pool/parser.ts';

// --- the corpus ------------------------------------------------------------------------------------

interface Case {
  name: string;
  bytes: Buffer;
  /** The request method (HEAD: no body whatever the head says). */
  method?: string;
}

const b = (s: string) => Buffer.from(s, 'latin1');
const CRLF = '\r\n';
/** A response: status line, header lines, blank line, then `body` as is. */
const res = (status: string, headers: string[], body = '') =>
  b([status, ...headers].join(CRLF) + CRLF + CRLF + body);
const ok = (headers: string[], body = '') => res('HTTP/1.1 200 OK', headers, body);
const cl = (body: string, ...headers: string[]) => ok([...headers, `Content-Length: ${body.length}`], body);
const chunked = (wire: string, ...headers: string[]) => ok(['Transfer-Encoding: chunked', ...headers], wire);
/** A chunked body for `parts`, with an optional trailer section. */
const chunks = (parts: string[], trailers: string[] = []) =>
  parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('') +
  '0\r\n' +
  trailers.map((t) => t + CRLF).join('') +
  CRLF;

const VALID: Case[] = [
  { name: 'cl minimal', bytes: cl('hello') },
  { name: 'cl zero', bytes: cl('') },
  { name: 'cl with connection close', bytes: cl('bye', 'Connection: close') },
  { name: 'cl keep-alive hint', bytes: cl('ka', 'Connection: keep-alive', 'Keep-Alive: timeout=5, max=100') },
  { name: 'cl 100 KiB', bytes: cl('y'.repeat(100 * 1024)) },
  { name: 'status 404', bytes: res('HTTP/1.1 404 Not Found', ['Content-Length: 3'], 'nop') },
  { name: 'status 500', bytes: res('HTTP/1.1 500 Internal Server Error', ['Content-Length: 0']) },
  { name: 'status 599', bytes: res('HTTP/1.1 599 Whatever', ['Content-Length: 0']) },
  { name: 'status 201 no reason', bytes: res('HTTP/1.1 201', ['Content-Length: 2'], 'ok') },
  { name: 'status no reason with SP', bytes: res('HTTP/1.1 200 ', ['Content-Length: 2'], 'ok') },
  { name: 'reason with spaces and tabs', bytes: res('HTTP/1.1 200 All \tgood here', ['Content-Length: 0']) },
  { name: 'reason obs-text', bytes: res('HTTP/1.1 200 Gr\xfc\xdfe', ['Content-Length: 0']) },
  { name: 'http/1.0 cl', bytes: res('HTTP/1.0 200 OK', ['Content-Length: 4'], 'abcd') },
  {
    name: 'http/1.0 close-delimited',
    bytes: res('HTTP/1.0 200 OK', ['Content-Type: text/plain'], 'to the end'),
  },
  {
    name: 'http/1.0 keep-alive',
    bytes: res('HTTP/1.0 200 OK', ['Connection: keep-alive', 'Content-Length: 2'], 'ka'),
  },
  { name: 'close-delimited', bytes: ok(['Content-Type: text/plain'], 'all of it until the close') },
  { name: 'close-delimited empty', bytes: ok(['Content-Type: text/plain']) },
  { name: 'close-delimited binary', bytes: ok([], '\x00\x01\r\n\r\nHTTP/1.1 200 OK\r\n\xff') },
  { name: 'chunked one chunk', bytes: chunked(chunks(['hello'])) },
  { name: 'chunked many chunks', bytes: chunked(chunks(['a', 'bc', 'def', 'x'.repeat(300)])) },
  { name: 'chunked empty', bytes: chunked(chunks([])) },
  { name: 'chunked uppercase hex', bytes: chunked('A\r\n0123456789\r\n0\r\n\r\n') },
  { name: 'chunked leading zeros', bytes: chunked('0005\r\nhello\r\n000\r\n\r\n') },
  { name: 'chunked extension token', bytes: chunked('5;foo=bar\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunked extension no value', bytes: chunked('5;foo\r\nhello\r\n0;last\r\n\r\n') },
  { name: 'chunked extension quoted', bytes: chunked('5;a="b c;d"\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunked extension quoted escape', bytes: chunked('5;a="x\\"y"\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunked extensions several', bytes: chunked('5;a=1;b;c="2"\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunked trailer', bytes: chunked(chunks(['body'], ['X-Checksum: abc']), 'Trailer: X-Checksum') },
  { name: 'chunked trailers several', bytes: chunked(chunks(['body'], ['A: 1', 'B: 2', 'a: 3'])) },
  { name: 'chunked trailer empty value', bytes: chunked(chunks(['body'], ['X-Empty:'])) },
  { name: 'chunked 1-byte chunks', bytes: chunked(chunks('abcdefghij'.split(''))) },
  { name: 'chunked te mixed case', bytes: ok(['Transfer-Encoding: ChUnKeD'], chunks(['x'])) },
  { name: 'chunked te with OWS', bytes: ok(['Transfer-Encoding:   chunked  '], chunks(['x'])) },
  { name: 'head cl', method: 'HEAD', bytes: ok(['Content-Length: 5']) },
  { name: 'head with cl 1000', method: 'HEAD', bytes: ok(['Content-Length: 1000']) },
  { name: 'head with te chunked', method: 'HEAD', bytes: ok(['Transfer-Encoding: chunked']) },
  { name: '204 no body', bytes: res('HTTP/1.1 204 No Content', ['Date: Sat, 28 Nov 2026 08:00:00 GMT']) },
  { name: '204 with cl 0', bytes: res('HTTP/1.1 204 No Content', ['Content-Length: 0']) },
  {
    name: '304 with etag and cl',
    bytes: res('HTTP/1.1 304 Not Modified', ['ETag: "x"', 'Content-Length: 10']),
  },
  {
    name: '100 continue then 200',
    bytes: b(`HTTP/1.1 100 Continue\r\n\r\n${cl('done').toString('latin1')}`),
  },
  {
    name: '103 early hints then 200',
    bytes: b(
      `HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n\r\n${cl('page').toString('latin1')}`,
    ),
  },
  {
    name: 'two 1xx then 200',
    bytes: b(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n${cl('x').toString('latin1')}`),
  },
  { name: 'header no space after colon', bytes: cl('a', 'X-A:1') },
  { name: 'header tabs and spaces around value', bytes: cl('a', 'X-A: \t 1 \t ') },
  { name: 'header empty value', bytes: cl('a', 'X-Empty:') },
  { name: 'header empty value with space', bytes: cl('a', 'X-Empty: ') },
  { name: 'header obs-text value', bytes: cl('a', 'X-Latin: caf\xe9 \xff') },
  { name: 'header value with inner spaces', bytes: cl('a', 'X-A: a  b\tc') },
  {
    name: 'header repeated set-cookie',
    bytes: cl('a', 'Set-Cookie: a=1', 'Set-Cookie: b=2', 'set-cookie: c=3'),
  },
  { name: 'header repeated other', bytes: cl('a', 'X-A: 1', 'x-a: 2') },
  { name: 'header all tchars', bytes: cl('a', "X!#$%&'*+-.^_`|~09aZ: v") },
  { name: 'header mixed case', bytes: cl('a', 'CoNtEnT-TyPe: text/plain') },
  {
    name: 'header names like prototype members',
    bytes: cl('a', 'constructor: c', '__proto__: p', 'toString: t'),
  },
  { name: 'header 8 KiB value', bytes: cl('a', `X-Big: ${'v'.repeat(8192)}`) },
  { name: 'header many fields', bytes: cl('a', ...Array.from({ length: 150 }, (_, i) => `X-H${i}: ${i}`)) },
  { name: 'cl with OWS', bytes: ok(['Content-Length:  3  '], 'abc') },
  { name: 'cl trailing tab', bytes: ok(['Content-Length: 5\t'], 'hello') },
  { name: 'cl leading tab', bytes: ok(['Content-Length:\t5'], 'hello') },
  { name: 'cl leading zeros', bytes: ok(['Content-Length: 003'], 'abc') },
  {
    name: 'typical origin response',
    bytes: cl(
      '{"ok":true}',
      'Server: nginx/1.22.1',
      'Date: Sat, 28 Nov 2026 08:00:00 GMT',
      'Content-Type: application/json',
      'Connection: keep-alive',
      'Vary: Accept-Encoding',
      'Cache-Control: no-store',
      'ETag: "abc"',
    ),
  },
  {
    name: 'head 60 KiB',
    bytes: cl('a', ...Array.from({ length: 60 }, (_, i) => `X-${i}: ${'z'.repeat(1000)}`)),
  },
];

const INVALID: Case[] = [
  // framing: Content-Length and Transfer-Encoding
  { name: 'cl and te', bytes: ok(['Content-Length: 5', 'Transfer-Encoding: chunked'], chunks(['hello'])) },
  { name: 'te and cl', bytes: ok(['Transfer-Encoding: chunked', 'Content-Length: 5'], chunks(['hello'])) },
  { name: 'cl duplicate same', bytes: ok(['Content-Length: 5', 'Content-Length: 5'], 'hello') },
  { name: 'cl duplicate different', bytes: ok(['Content-Length: 5', 'Content-Length: 6'], 'hello!') },
  { name: 'cl list', bytes: ok(['Content-Length: 5, 5'], 'hello') },
  { name: 'cl negative', bytes: ok(['Content-Length: -1'], 'x') },
  { name: 'cl plus sign', bytes: ok(['Content-Length: +5'], 'hello') },
  { name: 'cl inner space', bytes: ok(['Content-Length: 1 0'], 'helloworld') },
  { name: 'cl hex', bytes: ok(['Content-Length: 0x5'], 'hello') },
  { name: 'cl empty', bytes: ok(['Content-Length:'], '') },
  { name: 'cl letters', bytes: ok(['Content-Length: five'], 'hello') },
  { name: 'cl too many digits', bytes: ok(['Content-Length: 1234567890123456789'], 'x') },
  { name: 'cl body cut by close', bytes: ok(['Content-Length: 10'], 'short') },
  {
    name: 'cl body cut by close, connection close',
    bytes: ok(['Content-Length: 10', 'Connection: close'], 'short'),
  },
  { name: 'te gzip', bytes: ok(['Transfer-Encoding: gzip'], 'gzipped bytes') },
  { name: 'te gzip, chunked', bytes: ok(['Transfer-Encoding: gzip, chunked'], chunks(['x'])) },
  { name: 'te chunked, gzip', bytes: ok(['Transfer-Encoding: chunked, gzip'], 'x') },
  {
    name: 'te chunked twice in one field',
    bytes: ok(['Transfer-Encoding: chunked, chunked'], chunks(['x'])),
  },
  {
    name: 'te chunked in two fields',
    bytes: ok(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], chunks(['x'])),
  },
  { name: 'te identity', bytes: ok(['Transfer-Encoding: identity'], 'x') },
  { name: 'te xchunked', bytes: ok(['Transfer-Encoding: xchunked'], chunks(['x'])) },
  { name: 'te chunked with vertical tab', bytes: ok(['Transfer-Encoding: \x0bchunked'], chunks(['x'])) },
  { name: 'te empty', bytes: ok(['Transfer-Encoding:'], chunks(['x'])) },
  { name: 'te in http/1.0', bytes: res('HTTP/1.0 200 OK', ['Transfer-Encoding: chunked'], chunks(['x'])) },
  { name: 'te chunked trailing tab', bytes: ok(['Transfer-Encoding: chunked\t'], chunks(['x'])) },
  { name: 'te chunked leading tab', bytes: ok(['Transfer-Encoding:\tchunked'], chunks(['x'])) },
  { name: 'te chunked tab then space', bytes: ok(['Transfer-Encoding: chunked\t '], chunks(['x'])) },
  { name: 'te chunked with parameter', bytes: ok(['Transfer-Encoding: chunked;q=1'], chunks(['x'])) },
  // chunks
  { name: 'chunk size not hex', bytes: chunked('zz\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size negative', bytes: chunked('-5\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size 0x prefix', bytes: chunked('0x5\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size overflow', bytes: chunked('fffffffffffffffffff\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size 2^53', bytes: chunked('20000000000000\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size space after', bytes: chunked('5 \r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size tab after', bytes: chunked('5\t\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size space before', bytes: chunked(' 5\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size empty line', bytes: chunked('\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size bare LF', bytes: chunked('5\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size CR without LF', bytes: chunked('5\rhello\r\n0\r\n\r\n') },
  { name: 'chunk data longer than size', bytes: chunked('3\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk data missing CRLF', bytes: chunked('5\r\nhelloX\r\n0\r\n\r\n') },
  { name: 'chunk data bare LF after', bytes: chunked('5\r\nhello\n0\r\n\r\n') },
  { name: 'chunk ext bare semicolon', bytes: chunked('5;\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext empty value', bytes: chunked('5;a=\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext space before semicolon', bytes: chunked('5 ;a=b\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext space after semicolon', bytes: chunked('5; a=b\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext unterminated quote', bytes: chunked('5;a="b\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext bad char', bytes: chunked('5;a@b\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext NUL in quoted', bytes: chunked('5;a="\x00"\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext long', bytes: chunked(`5;a=${'x'.repeat(20_000)}\r\nhello\r\n0\r\n\r\n`) },
  { name: 'chunked cut by close', bytes: chunked('5\r\nhel') },
  { name: 'chunked no last chunk', bytes: chunked('5\r\nhello\r\n') },
  { name: 'chunked no final CRLF', bytes: chunked('5\r\nhello\r\n0\r\n') },
  { name: 'trailer content-length', bytes: chunked(chunks(['x'], ['Content-Length: 1'])) },
  { name: 'trailer transfer-encoding', bytes: chunked(chunks(['x'], ['Transfer-Encoding: chunked'])) },
  { name: 'trailer obs-fold', bytes: chunked(chunks(['x'], ['A: 1', ' 2'])) },
  { name: 'trailer bare LF', bytes: chunked('1\r\nx\r\n0\r\nA: 1\n\r\n') },
  { name: 'trailer space before colon', bytes: chunked(chunks(['x'], ['A : 1'])) },
  { name: 'trailer NUL', bytes: chunked(chunks(['x'], ['A: \x00'])) },
  // status line
  { name: 'version 1.2', bytes: res('HTTP/1.2 200 OK', ['Content-Length: 0']) },
  { name: 'version 2.0', bytes: res('HTTP/2.0 200 OK', ['Content-Length: 0']) },
  { name: 'version 0.9', bytes: res('HTTP/0.9 200 OK', ['Content-Length: 0']) },
  { name: 'version 3.0', bytes: res('HTTP/3.0 200 OK', ['Content-Length: 0']) },
  { name: 'version 11.1', bytes: res('HTTP/11.1 200 OK', ['Content-Length: 0']) },
  { name: 'version lower case', bytes: res('http/1.1 200 OK', ['Content-Length: 0']) },
  { name: 'version other protocol', bytes: res('RTSP/1.0 200 OK', ['Content-Length: 0']) },
  { name: 'version ICY', bytes: res('ICY 200 OK', ['Content-Length: 0']) },
  { name: 'version missing minor', bytes: res('HTTP/1 200 OK', ['Content-Length: 0']) },
  { name: 'status two digits', bytes: res('HTTP/1.1 20 OK', ['Content-Length: 0']) },
  { name: 'status four digits', bytes: res('HTTP/1.1 2000 OK', ['Content-Length: 0']) },
  { name: 'status letters', bytes: res('HTTP/1.1 2x0 OK', ['Content-Length: 0']) },
  { name: 'status 000', bytes: res('HTTP/1.1 000 Zero', ['Content-Length: 0']) },
  { name: 'status 099', bytes: res('HTTP/1.1 099 Low', ['Content-Length: 0']) },
  { name: 'status 600', bytes: res('HTTP/1.1 600 High', ['Content-Length: 0']) },
  { name: 'status 999', bytes: res('HTTP/1.1 999 High', ['Content-Length: 0']) },
  { name: 'status missing', bytes: res('HTTP/1.1 OK', ['Content-Length: 0']) },
  { name: 'status double space', bytes: res('HTTP/1.1  200 OK', ['Content-Length: 0']) },
  { name: 'status tab separator', bytes: res('HTTP/1.1\t200 OK', ['Content-Length: 0']) },
  { name: 'status no separator', bytes: res('HTTP/1.1200 OK', ['Content-Length: 0']) },
  { name: 'status tab before reason', bytes: res('HTTP/1.1 200\tOK', ['Content-Length: 0']) },
  { name: 'reason with NUL', bytes: res('HTTP/1.1 200 O\x00K', ['Content-Length: 0']) },
  { name: 'reason with control char', bytes: res('HTTP/1.1 200 O\x01K', ['Content-Length: 0']) },
  { name: 'reason with CR', bytes: res('HTTP/1.1 200 O\rK', ['Content-Length: 0']) },
  { name: 'status line bare LF', bytes: b('HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n') },
  { name: 'leading CRLF', bytes: b(`\r\n${cl('x').toString('latin1')}`) },
  { name: 'leading garbage', bytes: b(`XHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n`) },
  { name: 'tls alert', bytes: Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28]) },
  { name: 'http/2 settings frame', bytes: Buffer.from('000000040000000000', 'hex') },
  { name: 'empty response', bytes: b('') },
  { name: 'head cut by close', bytes: b('HTTP/1.1 200 OK\r\nContent-Len') },
  { name: '100 in http/1.0', bytes: b(`HTTP/1.0 100 Continue\r\n\r\n${cl('x').toString('latin1')}`) },
  {
    name: '100 with connection close',
    bytes: b(`HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n${cl('x').toString('latin1')}`),
  },
  {
    name: 'status 101 unasked',
    bytes: res('HTTP/1.1 101 Switching Protocols', ['Connection: upgrade', 'Upgrade: websocket']),
  },
  // header lines
  { name: 'header bare LF', bytes: b('HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0\r\n\r\n') },
  { name: 'header bare LF ending head', bytes: b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n') },
  { name: 'header all bare LF', bytes: b('HTTP/1.1 200 OK\nContent-Length: 2\n\nok') },
  { name: 'header CR in value', bytes: cl('a', 'X-A: 1\r2') },
  { name: 'header CR at end without LF', bytes: b('HTTP/1.1 200 OK\r\nX-A: 1\r\rContent-Length: 0\r\n\r\n') },
  { name: 'header NUL in value', bytes: cl('a', 'X-A: 1\x002') },
  { name: 'header NUL in name', bytes: cl('a', 'X-\x00A: 1') },
  { name: 'header DEL in value', bytes: cl('a', 'X-A: 1\x7f2') },
  { name: 'header control char in value', bytes: cl('a', 'X-A: 1\x012') },
  { name: 'header vertical tab in value', bytes: cl('a', 'X-A: 1\x0b2') },
  { name: 'header obs-fold space', bytes: cl('a', 'X-A: 1', ' 2') },
  { name: 'header obs-fold tab', bytes: cl('a', 'X-A: 1', '\t2') },
  { name: 'header obs-fold on content-length', bytes: ok(['Content-Length: 1', ' 0'], 'helloworld') },
  { name: 'header space before colon', bytes: cl('a', 'X-A : 1') },
  { name: 'header tab before colon', bytes: cl('a', 'X-A\t: 1') },
  { name: 'header space in name', bytes: cl('a', 'X A: 1') },
  { name: 'header empty name', bytes: cl('a', ': 1') },
  { name: 'header no colon', bytes: cl('a', 'X-A 1') },
  { name: 'header bad char in name', bytes: cl('a', 'X@A: 1') },
  { name: 'header parenthesis in name', bytes: cl('a', 'X(A): 1') },
  {
    name: 'header first line starts with space',
    bytes: b('HTTP/1.1 200 OK\r\n X-A: 1\r\nContent-Length: 0\r\n\r\n'),
  },
  { name: 'header cl with space before colon', bytes: ok(['Content-Length : 5'], 'hello') },
  { name: 'header te with space before colon', bytes: ok(['Transfer-Encoding : chunked'], chunks(['x'])) },
  {
    name: 'head over 64 KiB',
    bytes: cl('a', ...Array.from({ length: 70 }, (_, i) => `X-${i}: ${'z'.repeat(1000)}`)),
  },
];

/** Cases where ours deliberately refuses what node's client accepts, and why. */
const STRICTER: Record<string, string> = {
  'te gzip':
    'only chunked is a transfer coding we decode; a proxy must not pass on a gzip coding as a plain body',
  'te gzip, chunked': 'only chunked is a transfer coding we decode (RFC 9112 §6.1)',
  'te chunked, gzip': 'only chunked is a transfer coding we decode; llhttp reads to the close',
  'te chunked trailing tab':
    'llhttp reads `chunked<HTAB>` as another coding and the body to the close, where others see chunked: a smuggling shape',
  'te chunked tab then space': 'no HTAB in Transfer-Encoding (as above)',
  'te chunked leading tab': 'no HTAB in Transfer-Encoding: llhttp reads `chunked<HTAB>` as another coding',
  'te chunked twice in one field': 'chunked must not be applied more than once (RFC 9112 §6.1)',
  'te identity': 'identity is no transfer coding (RFC 9112 §7); llhttp reads to the close',
  'te xchunked': 'an unknown transfer coding; llhttp reads to the close',
  'te chunked with parameter': 'no parameters on chunked; llhttp reads to the close',
  'te in http/1.0': 'Transfer-Encoding in HTTP/1.0 means faulty framing (RFC 9112 §6.1)',
  'version 2.0': 'only HTTP/1.0 and HTTP/1.1 responses on an HTTP/1.1 connection',
  'version 0.9': 'only HTTP/1.0 and HTTP/1.1 responses on an HTTP/1.1 connection',
  'status 099': 'status codes are 100..599 (RFC 9110 §15)',
  'status 600': 'status codes are 100..599 (RFC 9110 §15)',
  'status 999': 'status codes are 100..599 (RFC 9110 §15)',
  'reason with control char': 'the reason phrase is HTAB / SP / VCHAR / obs-text (RFC 9112 §4)',
  'leading CRLF': 'a response starts with its status line; stray bytes mean a confused connection',
  'te chunked in two fields': 'chunked must not be applied more than once (RFC 9112 §6.1)',
  'chunk ext empty value': 'an "=" in a chunk extension needs a token or quoted-string (RFC 9112 §7.1.1)',
  'trailer transfer-encoding': 'framing fields are not allowed in trailers (RFC 9110 §6.5.1)',
  'version other protocol': 'only HTTP/1.x responses; llhttp also takes RTSP/1.0',
  'status 000': 'status codes are 100..599 (RFC 9110 §15)',
  'reason with NUL': 'the reason phrase is HTAB / SP / VCHAR / obs-text (RFC 9112 §4)',
};

// --- node's client as the oracle ---------------------------------------------------------------------

interface Head {
  status: number;
  headers: ResponseHeaders;
}

interface Outcome {
  /** Heads seen, 1xx included, in order. */
  heads: Head[];
  body: string;
  trailers: ResponseHeaders;
  complete: boolean;
  error: string | null;
  /** Node: the response completed, then the bytes after it were refused (they are not this response's). */
  errorAfter?: string;
}

/** undici's (and our) header object from a flat raw list: lower-case names, arrays for repeats. */
function headerObject(raw: string[]): ResponseHeaders {
  const out: ResponseHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const prev = Object.hasOwn(out, name) ? out[name] : undefined;
    const value = raw[i + 1];
    if (prev === undefined)
      Object.defineProperty(out, name, { value, enumerable: true, configurable: true, writable: true });
    else if (typeof prev === 'string') out[name] = [prev, value];
    else prev.push(value);
  }
  return out;
}

class Oracle {
  private server: Server;
  private pending = new Map<number, Buffer>();
  port = 0;

  constructor() {
    this.server = createServer((s: Socket) => {
      s.on('error', () => {});
      let seen = '';
      s.on('data', (c: Buffer) => {
        seen += c.toString('latin1');
        if (!seen.includes('\r\n\r\n')) return;
        const id = Number(/x-case: (\d+)/.exec(seen)?.[1]);
        const bytes = this.pending.get(id) ?? Buffer.alloc(0);
        this.pending.delete(id);
        s.end(bytes);
      });
    });
  }

  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private next = 0;

  run(c: Case): Promise<Outcome> {
    const id = this.next++;
    this.pending.set(id, c.bytes);
    return new Promise((resolve) => {
      const out: Outcome = { heads: [], body: '', trailers: {}, complete: false, error: null };
      let settled = false;
      const done = (error: string | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        out.error = error;
        resolve(out);
      };
      const timer = setTimeout(() => {
        req.destroy();
        done('timeout');
      }, 5000);
      const req = request({
        host: '127.0.0.1',
        port: this.port,
        method: c.method ?? 'GET',
        path: '/',
        agent: false,
        headers: { 'x-case': String(id) },
        maxHeaderSize: 64 * 1024,
      });
      req.on('information', (info) => {
        out.heads.push({ status: info.statusCode, headers: headerObject(info.rawHeaders) });
      });
      req.on('upgrade', (r, socket) => {
        socket.destroy();
        out.heads.push({ status: r.statusCode ?? 0, headers: headerObject(r.rawHeaders) });
        done('upgrade');
      });
      const parts: Buffer[] = [];
      let response: import('node:http').IncomingMessage | undefined;
      req.on('response', (r) => {
        response = r;
        out.heads.push({ status: r.statusCode ?? 0, headers: headerObject(r.rawHeaders) });
        r.on('data', (d: Buffer) => parts.push(d));
        r.on('end', () => {
          out.body = Buffer.concat(parts).toString('latin1');
          out.trailers = headerObject(r.rawTrailers);
          out.complete = r.complete;
          done(r.complete ? null : 'incomplete');
        });
        r.on('aborted', () => done('aborted'));
        r.on('error', (e: Error & { code?: string }) => done(e.code ?? e.message));
      });
      req.on('error', (e: Error & { code?: string }) => {
        const code = e.code ?? e.message;
        if (response?.complete) {
          // The response was whole; what came after it was refused.
          out.body = Buffer.concat(parts).toString('latin1');
          out.trailers = headerObject(response.rawTrailers);
          out.complete = true;
          out.errorAfter = code;
          done(null);
          return;
        }
        done(code);
      });
      req.end();
    });
  }
}

// --- ours --------------------------------------------------------------------------------------------

class Recorder implements H1ResponseHandler {
  out: Outcome = { heads: [], body: '', trailers: {}, complete: false, error: null };
  parts: Buffer[] = [];
  onHead(status: number, _reason: string, headers: ResponseHeaders): boolean {
    this.out.heads.push({ status, headers });
    return true;
  }
  onBody(chunk: Buffer): boolean {
    this.parts.push(Buffer.from(chunk)); // copied: a subarray is only valid during the call
    return true;
  }
  onComplete(trailers: ResponseHeaders): void {
    this.out.trailers = { ...trailers };
    this.out.complete = true;
  }
}

/** Parses `pieces` in order, then the end of the connection, as a connection would. */
function parsePieces(pieces: Buffer[], method = 'GET'): Outcome & { leftover: number } {
  const rec = new Recorder();
  const p = new H1ResponseParser(rec, 64 * 1024);
  p.start(method === 'HEAD');
  let leftover = 0;
  let failed = false;
  for (const piece of pieces) {
    if (rec.out.complete) {
      leftover += piece.length;
      continue;
    }
    const r = p.execute(piece, 0);
    if (r === ERROR) {
      failed = true;
      break;
    }
    leftover += piece.length - r;
  }
  if (!failed && !rec.out.complete && p.finish() === ERROR) failed = true;
  rec.out.body = Buffer.concat(rec.parts).toString('latin1');
  if (failed) rec.out.error = p.errorCode;
  return { ...rec.out, leftover };
}

function parseWhole(c: Case) {
  return parsePieces([c.bytes], c.method);
}

type Verdict = 'same' | 'stricter' | 'looser' | 'different';

function comparable(o: Outcome) {
  return {
    heads: o.heads.map((h) => ({ status: h.status, headers: { ...h.headers } })),
    body: o.body,
    trailers: { ...o.trailers },
  };
}

/**
 * Bytes after a complete response are no part of it: node goes on to parse them as the next response
 * (and refuses them); our connection is closed without reading them (undici does the same), so the
 * response itself is accepted by both. Anything else node refuses, ours must refuse.
 */
function verdict(node: Outcome, ours: Outcome & { leftover?: number }): { verdict: Verdict; detail: string } {
  const ourOk = ours.error === null && ours.complete;
  if (node.errorAfter !== undefined && ourOk && !(ours.leftover !== undefined && ours.leftover > 0)) {
    return {
      verdict: 'looser',
      detail: `node refused the bytes after the response (${node.errorAfter}); ours read them`,
    };
  }
  const nodeOk = node.error === null;
  const detail = `node: ${nodeOk ? 'accepted' : `refused (${node.error})`}; ours: ${ourOk ? 'accepted' : `refused (${ours.error})`}`;
  if (nodeOk && ourOk) {
    try {
      assert.deepEqual(comparable(ours), comparable(node));
    } catch (err) {
      return { verdict: 'different', detail: `${detail}: ${(err as Error).message}` };
    }
    return { verdict: 'same', detail };
  }
  if (ourOk) return { verdict: 'looser', detail };
  if (nodeOk) return { verdict: 'stricter', detail };
  return { verdict: 'same', detail };
}

// --- generated inputs ----------------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SPECIAL = [0, 9, 10, 11, 13, 32, 34, 44, 58, 59, 127, 0xff, 48, 65, 102];

/** Valid responses with one byte changed, inserted or removed, at seeded positions. */
function mutations(seed: number, n: number): Case[] {
  const r = rng(seed);
  const small = VALID.filter((c) => c.bytes.length < 2048);
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const base = small[Math.floor(r() * small.length)];
    const bytes = Buffer.from(base.bytes);
    const at = Math.floor(r() * bytes.length);
    const byte = SPECIAL[Math.floor(r() * SPECIAL.length)];
    const op = r();
    let mutated: Buffer;
    if (op < 0.4) {
      bytes[at] = byte;
      mutated = bytes;
    } else if (op < 0.8) {
      mutated = Buffer.concat([bytes.subarray(0, at), Buffer.from([byte]), bytes.subarray(at)]);
    } else {
      mutated = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
    }
    out.push({ name: `mutation ${i} of ${base.name}`, bytes: mutated, method: base.method });
  }
  return out;
}

/** Combinations of framing fields and bodies, seeded. */
function framingCombos(seed: number, n: number): Case[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const fields = [
    'Content-Length: 5',
    'Content-Length: 0',
    'Content-Length: 10',
    'Content-Length: 5 ',
    'Content-Length: 05',
    'Content-Length: 5,5',
    'Transfer-Encoding: chunked',
    'Transfer-Encoding: Chunked',
    'Transfer-Encoding: chunked ',
    'Transfer-Encoding: gzip',
    'Transfer-Encoding: chunked, identity',
    'Transfer-Encoding:chunked',
    'Connection: close',
    'Connection: keep-alive',
    'Keep-Alive: timeout=1',
    'X-Other: 1',
  ];
  const bodies = ['hello', '', '5\r\nhello\r\n0\r\n\r\n', '0\r\n\r\n', 'hello world', '5\r\nhello\r\n'];
  const statuses = [
    'HTTP/1.1 200 OK',
    'HTTP/1.0 200 OK',
    'HTTP/1.1 204 No Content',
    'HTTP/1.1 304 Not Modified',
  ];
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const k = 1 + Math.floor(r() * 3);
    const hs = Array.from({ length: k }, () => pick(fields));
    const method = r() < 0.15 ? 'HEAD' : 'GET';
    out.push({ name: `framing ${i}`, bytes: res(pick(statuses), hs, pick(bodies)), method });
  }
  return out;
}

// --- the tests -------------------------------------------------------------------------------------------

const corpus = [...VALID, ...INVALID];

describe('HTTP/1.1 response parser against node:http (llhttp)', () => {
  const oracle = new Oracle();
  const results = new Map<string, Outcome>();
  const scale = Number(process.env.H1_FUZZ_SCALE ?? 1);
  const seed = Number(process.env.H1_FUZZ_SEED ?? 0);
  const generated = [
    { name: 'mutations of the valid cases', cases: mutations(0x51ee + seed, 800 * scale) },
    { name: 'combinations of framing fields and bodies', cases: framingCombos(0xc0de + seed, 400 * scale) },
  ];

  before(async () => {
    await oracle.start();
    const queue: Case[] = [...corpus, ...generated.flatMap((g) => g.cases)];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) results.set(c.name, await oracle.run(c));
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  });

  after(() => oracle.close());

  it('the corpus has unique names and the allow-list names only INVALID cases', () => {
    const names = new Set(corpus.map((c) => c.name));
    assert.equal(names.size, corpus.length, 'duplicate case names');
    const invalid = new Set(INVALID.map((c) => c.name));
    for (const name of Object.keys(STRICTER))
      assert.ok(invalid.has(name), `STRICTER names an unknown case: ${name}`);
  });

  it('node accepts every VALID case, and ours parses each the same', () => {
    for (const c of VALID) {
      const node = results.get(c.name)!;
      assert.equal(node.error, null, `${c.name}: node refused (${node.error})`);
      const ours = parseWhole(c);
      const v = verdict(node, ours);
      assert.equal(v.verdict, 'same', `${c.name}: ${v.detail}`);
      assert.equal(ours.leftover, 0, `${c.name}: bytes left after the response`);
    }
  });

  it('ours refuses every INVALID case node refuses, and refuses the rest only as STRICTER says', () => {
    const problems: string[] = [];
    for (const c of INVALID) {
      const node = results.get(c.name)!;
      const ours = parseWhole(c);
      const v = verdict(node, ours);
      if (v.verdict === 'looser') problems.push(`${c.name}: ours accepts what node refuses. ${v.detail}`);
      if (v.verdict === 'different') problems.push(`${c.name}: ${v.detail}`);
      if (v.verdict === 'stricter' && !STRICTER[c.name])
        problems.push(`${c.name}: ours refuses what node accepts, not in STRICTER. ${v.detail}`);
      if (v.verdict !== 'stricter' && STRICTER[c.name])
        problems.push(`${c.name}: in STRICTER, but node refuses it too (or ours accepts). ${v.detail}`);
      // and ours does refuse every INVALID case
      if (ours.error === null && ours.complete) problems.push(`${c.name}: ours accepted an INVALID case`);
    }
    assert.deepEqual(problems, []);
  });

  for (const g of generated) {
    it(`seeded fuzz: ${g.name} (${g.cases.length} inputs): never looser, never different`, () => {
      const count: Record<Verdict, number> = { same: 0, stricter: 0, looser: 0, different: 0 };
      const problems: string[] = [];
      for (const c of g.cases) {
        const node = results.get(c.name)!;
        const ours = parseWhole(c);
        const v = verdict(node, ours);
        count[v.verdict]++;
        const input = JSON.stringify(c.bytes.toString('latin1'));
        if (v.verdict === 'looser')
          problems.push(`ours accepts what node refuses (${c.method ?? 'GET'}): ${input}. ${v.detail}`);
        if (v.verdict === 'different') problems.push(`${input}: ${v.detail}`);
      }
      assert.deepEqual(problems.slice(0, 20), []);
      assert.ok(count.same > g.cases.length / 4, `mostly agreeing inputs: ${JSON.stringify(count)}`);
    });
  }
});

describe('chunk-split property: any split parses as the whole', () => {
  const valid = VALID.filter((c) => c.bytes.length <= 4096);

  it('every split into two pieces', () => {
    for (const c of valid) {
      const whole = parseWhole(c);
      for (let at = 0; at <= c.bytes.length; at++) {
        const split = parsePieces([c.bytes.subarray(0, at), c.bytes.subarray(at)], c.method);
        assert.deepEqual(split, whole, `${c.name}, split at ${at}`);
      }
    }
  });

  it('one byte at a time', () => {
    for (const c of valid) {
      const pieces = Array.from(c.bytes, (x) => Buffer.from([x]));
      assert.deepEqual(parsePieces(pieces, c.method), parseWhole(c), c.name);
    }
  });

  it('random splits into many pieces (seeded)', () => {
    const r = rng(0x5eed);
    for (const c of VALID) {
      const whole = parseWhole(c);
      for (let k = 0; k < 20; k++) {
        const pieces: Buffer[] = [];
        let pos = 0;
        while (pos < c.bytes.length) {
          const n = 1 + Math.floor(r() * Math.min(64, c.bytes.length - pos + 1));
          pieces.push(c.bytes.subarray(pos, pos + n));
          pos += n;
        }
        assert.deepEqual(
          parsePieces(pieces, c.method),
          whole,
          `${c.name}, pieces ${pieces.map((p) => p.length)}`,
        );
      }
    }
  });

  it('refusals do not depend on the split either', () => {
    for (const c of INVALID.filter((x) => x.bytes.length <= 4096)) {
      const whole = parseWhole(c);
      for (let at = 0; at <= c.bytes.length; at++) {
        const split = parsePieces([c.bytes.subarray(0, at), c.bytes.subarray(at)], c.method);
        assert.equal(
          split.error !== null || !split.complete,
          whole.error !== null || !whole.complete,
          `${c.name} at ${at}`,
        );
        if (whole.error === null) assert.deepEqual(split, whole, `${c.name}, split at ${at}`);
      }
    }
  });
});
