// Request byte streams for the HTTP/1.1 parser tests: valid requests of many shapes, and every
// malformed or smuggling shape we know of. Each case is named; the differential test's allow-list
// refers to these names.

export interface H1Case {
  name: string;
  bytes: Buffer;
}

const CRLF = '\r\n';
const b = (s: string) => Buffer.from(s, 'latin1');
/** A request from lines joined by CRLF, the head ended by an empty line, then `body` as is. */
const req = (lines: string[], body = '') => b(lines.join(CRLF) + CRLF + CRLF + body);
const get = (...headers: string[]) => req(['GET / HTTP/1.1', 'Host: example.com', ...headers]);
const post = (headers: string[], body: string) =>
  req(['POST /submit HTTP/1.1', 'Host: example.com', ...headers], body);
const chunked = (body: string, ...headers: string[]) =>
  post(['Transfer-Encoding: chunked', ...headers], body);
/** A request line with Host, and nothing else special. */
const line = (l: string) => req([l, 'Host: example.com']);

const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'QUERY',
  'COPY',
  'LOCK',
  'MKCOL',
  'MOVE',
  'PROPFIND',
  'PROPPATCH',
  'SEARCH',
  'UNLOCK',
  'BIND',
  'REBIND',
  'UNBIND',
  'ACL',
  'REPORT',
  'MKACTIVITY',
  'CHECKOUT',
  'MERGE',
  'M-SEARCH',
  'NOTIFY',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'PURGE',
  'MKCALENDAR',
  'LINK',
  'UNLINK',
  'SOURCE',
];

const browserHeaders = [
  'Host: www.example.com',
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'Accept-Language: en-US,en;q=0.5',
  'Accept-Encoding: gzip, deflate, br, zstd',
  'Connection: keep-alive',
  'Cookie: session=abc123; theme=dark; _ga=GA1.2.3.4',
  'Upgrade-Insecure-Requests: 1',
  'Sec-Fetch-Dest: document',
  'Sec-Fetch-Mode: navigate',
  'Priority: u=0, i',
];

/** Requests every conforming parser accepts (all are complete and keep the connection open). */
export const VALID: H1Case[] = [
  { name: 'get minimal', bytes: get() },
  { name: 'get browser head', bytes: req(['GET /index.html?utm=1 HTTP/1.1', ...browserHeaders]) },
  { name: 'get query and percent-encoding', bytes: line('GET /a/b%20c/d?x=1&y=%2F&z=a+b HTTP/1.1') },
  {
    name: 'get sub-delims and odd but allowed target bytes',
    bytes: line('GET /a;b=c/!$&\'()*+,=:@~_.-/"<>\\^`{|} HTTP/1.1'),
  },
  { name: 'get path starting with //', bytes: line('GET //a/b HTTP/1.1') },
  { name: 'get extra ? in query', bytes: line('GET /a?b?c=d HTTP/1.1') },
  { name: 'http/1.0 without Host', bytes: req(['GET / HTTP/1.0']) },
  { name: 'http/1.0 keep-alive', bytes: req(['GET / HTTP/1.0', 'Host: a', 'Connection: keep-alive']) },
  { name: 'connection close', bytes: get('Connection: close') },
  { name: 'connection list', bytes: get('Connection: keep-alive, TE', 'TE: trailers') },
  {
    name: 'post content-length',
    bytes: post(['Content-Length: 11', 'Content-Type: text/plain'], 'hello world'),
  },
  { name: 'post content-length 0', bytes: post(['Content-Length: 0'], '') },
  { name: 'content-length leading zeros', bytes: post(['Content-Length: 005'], 'hello') },
  { name: 'content-length surrounding whitespace', bytes: post(['Content-Length: \t 5 \t'], 'hello') },
  { name: 'content-length lower-case name', bytes: post(['content-length: 5'], 'hello') },
  { name: 'get with a body', bytes: req(['GET / HTTP/1.1', 'Host: a', 'Content-Length: 2'], 'ab') },
  { name: 'chunked', bytes: chunked('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n') },
  {
    name: 'chunked upper-case hex',
    bytes: chunked(`A\r\n${'x'.repeat(10)}\r\nb\r\n${'y'.repeat(11)}\r\n0\r\n\r\n`),
  },
  { name: 'chunked size leading zeros', bytes: chunked('0005\r\nhello\r\n000\r\n\r\n') },
  {
    name: 'chunked with trailers',
    bytes: chunked('5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n', 'Trailer: X-Checksum'),
  },
  {
    name: 'chunked extensions',
    bytes: chunked('5;name=value;flag\r\nhello\r\n5;q="quoted \\"x\\" ok"\r\nworld\r\n0;last\r\n\r\n'),
  },
  { name: 'chunked empty body', bytes: chunked('0\r\n\r\n') },
  {
    name: 'transfer-encoding upper case',
    bytes: post(['Transfer-Encoding: CHUNKED'], '1\r\nx\r\n0\r\n\r\n'),
  },
  {
    name: 'transfer-encoding leading tab',
    bytes: post(['Transfer-Encoding:\tchunked'], '1\r\nx\r\n0\r\n\r\n'),
  },
  {
    name: 'transfer-encoding trailing space',
    bytes: post(['Transfer-Encoding: chunked  '], '1\r\nx\r\n0\r\n\r\n'),
  },
  { name: 'chunked binary body', bytes: chunked('4\r\n\r\n\0\xff\r\n0\r\n\r\n') },
  { name: 'header value with obs-text', bytes: get('X-Name: caf\xe9 \x80\xff') },
  { name: 'header value empty', bytes: get('X-Empty:') },
  { name: 'header value only whitespace', bytes: get('X-Empty:   \t ') },
  { name: 'header value inner whitespace kept', bytes: get('X-Spaces:  a \t b  ') },
  { name: 'header no space after colon', bytes: get('X-A:b') },
  { name: 'header name with all tchars', bytes: get("X!#$%&'*+-.^_`|~09azAZ: v") },
  { name: 'header value with quotes and commas', bytes: get('X-List: "a, b", c;q=1, (comment)') },
  {
    name: 'repeated headers',
    bytes: get('Cookie: a=1', 'Cookie: b=2', 'X-Forwarded-For: 1.1.1.1', 'X-Forwarded-For: 2.2.2.2'),
  },
  { name: 'many headers', bytes: get(...Array.from({ length: 60 }, (_, i) => `X-H${i}: value-${i}`)) },
  { name: 'long target', bytes: line(`GET /${'a'.repeat(4000)} HTTP/1.1`) },
  { name: 'long header value', bytes: get(`X-Long: ${'v'.repeat(8000)}`) },
  { name: 'absolute-form', bytes: line('GET http://example.com/a?b=c HTTP/1.1') },
  { name: 'absolute-form https upper case', bytes: line('GET HTTPS://EXAMPLE.COM:8443/ HTTP/1.1') },
  { name: 'absolute-form without path', bytes: line('GET http://example.com HTTP/1.1') },
  { name: 'absolute-form query without path', bytes: line('GET http://example.com?x=1 HTTP/1.1') },
  { name: 'absolute-form ipv6', bytes: line('GET http://[::1]:8080/ HTTP/1.1') },
  { name: 'options asterisk', bytes: line('OPTIONS * HTTP/1.1') },
  { name: 'host ipv6 and port', bytes: req(['GET / HTTP/1.1', 'Host: [::1]:8080']) },
  { name: 'host empty', bytes: req(['GET / HTTP/1.1', 'Host:']) },
  { name: 'host lower-case name', bytes: req(['GET / HTTP/1.1', 'host: a.example']) },
  { name: 'expect 100-continue', bytes: post(['Expect: 100-continue', 'Content-Length: 2'], 'ok') },
  { name: 'expect other', bytes: get('Expect: something-else') },
  { name: 'leading empty line', bytes: b(`\r\n${get().toString('latin1')}`) },
  {
    name: 'pipelined gets',
    bytes: Buffer.concat([get(), line('GET /2 HTTP/1.1'), line('HEAD /3 HTTP/1.1')]),
  },
  {
    name: 'pipelined mixed bodies',
    bytes: Buffer.concat([
      post(['Content-Length: 3'], 'abc'),
      chunked('3\r\ndef\r\n0\r\nX-T: 1\r\n\r\n'),
      get(),
      post(['Content-Length: 0'], ''),
    ]),
  },
  { name: 'pipelined ending with close', bytes: Buffer.concat([get(), get('Connection: close')]) },
  {
    name: 'underscore header is just a header',
    bytes: post(['Transfer_Encoding: chunked', 'Content-Length: 3'], 'abc'),
  },
  { name: 'upgrade without connection upgrade', bytes: get('Upgrade: websocket') },
  ...METHODS.map((m) => ({ name: `method ${m}`, bytes: line(`${m} /m HTTP/1.1`) })),
];

/** Upgrades: node hands the socket over after the head; so do we (the parser pauses). */
export const UPGRADES: H1Case[] = [
  {
    name: 'upgrade websocket',
    bytes: get(
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
    ),
  },
  { name: 'upgrade with connection list', bytes: get('Connection: keep-alive, upgrade', 'Upgrade: h2c') },
  {
    name: 'connect authority-form',
    bytes: req(['CONNECT example.com:443 HTTP/1.1', 'Host: example.com:443']),
  },
  { name: 'connect ipv6', bytes: req(['CONNECT [::1]:443 HTTP/1.1', 'Host: [::1]:443']) },
];

const te = (value: string, body = '5\r\nhello\r\n0\r\n\r\n') => post([`Transfer-Encoding: ${value}`], body);

/** Malformed input and request smuggling shapes. */
export const INVALID: H1Case[] = [
  // Content-Length and Transfer-Encoding together (CL.TE, TE.CL)
  { name: 'CL.TE', bytes: post(['Content-Length: 6', 'Transfer-Encoding: chunked'], '0\r\n\r\nG') },
  {
    name: 'TE.CL',
    bytes: post(
      ['Transfer-Encoding: chunked', 'Content-Length: 4'],
      '5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n',
    ),
  },
  { name: 'CL.TE lower case', bytes: post(['content-length: 0', 'transfer-encoding: chunked'], '0\r\n\r\n') },
  { name: 'CL zero with TE', bytes: post(['Content-Length: 0', 'Transfer-Encoding: chunked'], '0\r\n\r\n') },
  // TE.TE obfuscations
  { name: 'TE xchunked', bytes: te('xchunked') },
  { name: 'TE chunkedx', bytes: te('chunkedx') },
  { name: 'TE chunk', bytes: te('chunk') },
  { name: 'TE chun ked', bytes: te('chun ked') },
  { name: 'TE quoted', bytes: te('"chunked"') },
  { name: 'TE with parameter', bytes: te('chunked;q=1') },
  { name: 'TE trailing tab', bytes: te('chunked\t') },
  { name: 'TE trailing space and tab', bytes: te('chunked \t') },
  { name: 'TE vertical tab', bytes: te('\x0bchunked') },
  { name: 'TE form feed', bytes: te('chunked\x0c') },
  { name: 'TE NUL', bytes: te('chunked\0') },
  { name: 'TE chunked, identity', bytes: te('chunked, identity') },
  { name: 'TE identity', bytes: te('identity', '') },
  { name: 'TE gzip', bytes: te('gzip', '') },
  { name: 'TE identity, chunked', bytes: te('identity, chunked') },
  { name: 'TE gzip, chunked', bytes: te('gzip, chunked') },
  { name: 'TE chunked, chunked', bytes: te('chunked, chunked') },
  { name: 'TE empty element first', bytes: te(', chunked') },
  { name: 'TE empty element last', bytes: te('chunked,') },
  { name: 'TE empty', bytes: te('') },
  {
    name: 'TE twice chunked',
    bytes: post(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '0\r\n\r\n'),
  },
  {
    name: 'TE gzip then chunked headers',
    bytes: post(['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'], '0\r\n\r\n'),
  },
  {
    name: 'TE chunked then gzip headers',
    bytes: post(['Transfer-Encoding: chunked', 'Transfer-Encoding: gzip'], '0\r\n\r\n'),
  },
  { name: 'TE space before colon', bytes: post(['Transfer-Encoding : chunked', 'Content-Length: 3'], 'abc') },
  { name: 'TE tab before colon', bytes: post(['Transfer-Encoding\t: chunked'], '0\r\n\r\n') },
  { name: 'TE vertical tab in name', bytes: post(['Transfer-Encoding\x0b: chunked'], '0\r\n\r\n') },
  {
    name: 'TE hidden by obs-fold',
    bytes: post(['X-Pad: x', ' Transfer-Encoding: chunked', 'Content-Length: 3'], 'abc'),
  },
  { name: 'TE folded value', bytes: post(['Transfer-Encoding:', ' chunked'], '0\r\n\r\n') },
  {
    name: 'TE line ends with bare LF',
    bytes: b('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\n\r\n0\r\n\r\n'),
  },
  {
    name: 'TE in HTTP/1.0',
    bytes: req(['POST / HTTP/1.0', 'Transfer-Encoding: chunked'], '1\r\nx\r\n0\r\n\r\n'),
  },
  // Content-Length
  { name: 'CL duplicate same', bytes: post(['Content-Length: 5', 'Content-Length: 5'], 'hello') },
  { name: 'CL duplicate different', bytes: post(['Content-Length: 5', 'Content-Length: 6'], 'hello!') },
  { name: 'CL duplicate different case', bytes: post(['Content-Length: 5', 'content-length: 6'], 'hello!') },
  { name: 'CL list same', bytes: post(['Content-Length: 5, 5'], 'hello') },
  { name: 'CL list different', bytes: post(['Content-Length: 5,6'], 'hello!') },
  { name: 'CL negative', bytes: post(['Content-Length: -1'], '') },
  { name: 'CL plus sign', bytes: post(['Content-Length: +5'], 'hello') },
  { name: 'CL hex', bytes: post(['Content-Length: 0x5'], 'hello') },
  { name: 'CL inner space', bytes: post(['Content-Length: 1 2'], 'x'.repeat(12)) },
  { name: 'CL trailing letter', bytes: post(['Content-Length: 5a'], 'hello') },
  { name: 'CL decimal', bytes: post(['Content-Length: 5.0'], 'hello') },
  { name: 'CL empty', bytes: post(['Content-Length:'], '') },
  { name: 'CL overflow', bytes: post(['Content-Length: 99999999999999999999999'], 'x') },
  { name: 'CL 2^64', bytes: post(['Content-Length: 18446744073709551616'], 'x') },
  { name: 'CL 16 digits', bytes: post(['Content-Length: 1000000000000000'], 'x') },
  { name: 'CL vertical tab', bytes: post(['Content-Length: 5\x0b'], 'hello') },
  { name: 'CL space before colon', bytes: post(['Content-Length : 5'], 'hello') },
  { name: 'CL body shorter than length', bytes: post(['Content-Length: 10'], 'hello') },
  // line endings
  { name: 'bare LF request line', bytes: b('GET / HTTP/1.1\nHost: a\r\n\r\n') },
  { name: 'bare LF header line', bytes: b('GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n') },
  { name: 'bare LF end of head', bytes: b('GET / HTTP/1.1\r\nHost: a\r\n\n') },
  { name: 'bare LF everywhere', bytes: b('GET / HTTP/1.1\nHost: a\n\n') },
  { name: 'bare LF before request', bytes: b('\nGET / HTTP/1.1\r\nHost: a\r\n\r\n') },
  { name: 'bare CR in header', bytes: b('GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n') },
  { name: 'bare CR end of request line', bytes: b('GET / HTTP/1.1\rHost: a\r\n\r\n') },
  { name: 'CR CR LF', bytes: b('GET / HTTP/1.1\r\nHost: a\r\r\n\r\n') },
  { name: 'bare LF chunk size', bytes: chunked('5\nhello\r\n0\r\n\r\n') },
  { name: 'bare LF after chunk data', bytes: chunked('5\r\nhello\n0\r\n\r\n') },
  { name: 'bare LF last chunk', bytes: chunked('5\r\nhello\r\n0\n\r\n') },
  { name: 'bare LF end of trailers', bytes: chunked('5\r\nhello\r\n0\r\n\n') },
  // folding and whitespace
  { name: 'obs-fold', bytes: get('X-Folded: a', ' b') },
  { name: 'obs-fold tab', bytes: get('X-Folded: a', '\tb') },
  { name: 'space before first header', bytes: b('GET / HTTP/1.1\r\n Host: a\r\n\r\n') },
  { name: 'space before colon', bytes: req(['GET / HTTP/1.1', 'Host : a']) },
  { name: 'header without colon', bytes: get('X-No-Colon') },
  { name: 'header empty name', bytes: get(': value') },
  { name: 'header name with space', bytes: get('X Y: z') },
  { name: 'header name with @', bytes: get('X@Y: z') },
  { name: 'header name with parenthesis', bytes: get('X(Y): z') },
  { name: 'header name with slash', bytes: get('X/Y: z') },
  { name: 'header name with obs-text', bytes: get('X\xe9: z') },
  { name: 'header name NUL', bytes: get('X\0: z') },
  // control characters in values
  { name: 'NUL in value', bytes: get('X: a\0b') },
  { name: 'CR in value', bytes: get('X: a\rb') },
  { name: 'LF in value', bytes: get('X: a\nb') },
  { name: 'DEL in value', bytes: get('X: a\x7fb') },
  { name: 'vertical tab in value', bytes: get('X: a\x0bb') },
  { name: 'form feed in value', bytes: get('X: a\x0cb') },
  { name: 'ESC in value', bytes: get('X: \x1b[31m') },
  { name: 'NUL in Host', bytes: req(['GET / HTTP/1.1', 'Host: a\0.example']) },
  // versions
  { name: 'version HTTP/1.2', bytes: line('GET / HTTP/1.2') },
  { name: 'version HTTP/2.0', bytes: line('GET / HTTP/2.0') },
  { name: 'version HTTP/3.0', bytes: line('GET / HTTP/3.0') },
  { name: 'version HTTP/0.9', bytes: line('GET / HTTP/0.9') },
  { name: 'version HTTP/1', bytes: line('GET / HTTP/1') },
  { name: 'version HTTP/11', bytes: line('GET / HTTP/11') },
  { name: 'version HTTP/1.10', bytes: line('GET / HTTP/1.10') },
  { name: 'version HTTP/1.1.1', bytes: line('GET / HTTP/1.1.1') },
  { name: 'version lower case', bytes: line('GET / http/1.1') },
  { name: 'version HTTP/ 1.1', bytes: line('GET / HTTP/ 1.1') },
  { name: 'version trailing space', bytes: line('GET / HTTP/1.1 ') },
  { name: 'version missing (HTTP/0.9 request)', bytes: b('GET /\r\n\r\n') },
  { name: 'version other protocol', bytes: line('GET / RTSP/1.0') },
  { name: 'version ICE', bytes: line('SOURCE / ICE/1.0') },
  // methods and request lines
  { name: 'method lower case', bytes: line('get / HTTP/1.1') },
  { name: 'method unknown', bytes: line('FOO / HTTP/1.1') },
  { name: 'method RTSP', bytes: line('DESCRIBE / HTTP/1.1') },
  { name: 'method with NUL', bytes: line('GE\0T / HTTP/1.1') },
  { name: 'method with space', bytes: line('G ET / HTTP/1.1') },
  { name: 'method empty', bytes: line(' / HTTP/1.1') },
  { name: 'method too long', bytes: line(`${'A'.repeat(100)} / HTTP/1.1`) },
  { name: 'method tab separator', bytes: line('GET\t/\tHTTP/1.1') },
  { name: 'request line double spaces', bytes: line('GET  /  HTTP/1.1') },
  { name: 'request line extra part', bytes: line('GET / HTTP/1.1 extra') },
  { name: 'request line only method', bytes: b('GET\r\nHost: a\r\n\r\n') },
  { name: 'HTTP/2 preface', bytes: b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n') },
  { name: 'TLS client hello', bytes: b('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03') },
  { name: 'a response, not a request', bytes: b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') },
  { name: 'garbage word', bytes: b('HELLO\r\n\r\n') },
  // targets
  { name: 'target fragment', bytes: line('GET /a#frag HTTP/1.1') },
  { name: 'target asterisk with GET', bytes: line('GET * HTTP/1.1') },
  { name: 'target asterisk with path', bytes: line('OPTIONS *a HTTP/1.1') },
  { name: 'target relative', bytes: line('GET a/b HTTP/1.1') },
  { name: 'target NUL', bytes: line('GET /a\0b HTTP/1.1') },
  { name: 'target tab', bytes: line('GET /a\tb HTTP/1.1') },
  { name: 'target DEL', bytes: line('GET /a\x7fb HTTP/1.1') },
  { name: 'target obs-text', bytes: line('GET /caf\xe9 HTTP/1.1') },
  { name: 'target with space', bytes: line('GET /a b HTTP/1.1') },
  { name: 'target bare CR', bytes: line('GET /a\rb HTTP/1.1') },
  { name: 'absolute-form userinfo', bytes: line('GET http://user:pw@example.com/ HTTP/1.1') },
  { name: 'absolute-form other scheme', bytes: line('GET ftp://example.com/ HTTP/1.1') },
  { name: 'absolute-form double @', bytes: line('GET http://a@b@c/ HTTP/1.1') },
  { name: 'absolute-form single slash', bytes: line('GET http:/example.com/ HTTP/1.1') },
  { name: 'absolute-form empty authority', bytes: line('GET http:///a HTTP/1.1') },
  { name: 'absolute-form bad authority char', bytes: line('GET http://exa"mple.com/ HTTP/1.1') },
  { name: 'connect origin-form', bytes: req(['CONNECT /x HTTP/1.1', 'Host: a']) },
  { name: 'connect without port', bytes: req(['CONNECT example.com HTTP/1.1', 'Host: example.com']) },
  { name: 'connect with userinfo', bytes: req(['CONNECT u@example.com:443 HTTP/1.1', 'Host: example.com']) },
  {
    name: 'connect with a body',
    bytes: req(['CONNECT example.com:443 HTTP/1.1', 'Host: a', 'Content-Length: 2'], 'ab'),
  },
  // Host
  { name: 'host missing in 1.1', bytes: req(['GET / HTTP/1.1']) },
  { name: 'host twice same', bytes: req(['GET / HTTP/1.1', 'Host: a', 'Host: a']) },
  { name: 'host twice different', bytes: req(['GET / HTTP/1.1', 'Host: a', 'Host: b']) },
  { name: 'host twice different case', bytes: req(['GET / HTTP/1.1', 'Host: a', 'host: b']) },
  { name: 'host with space', bytes: req(['GET / HTTP/1.1', 'Host: a b']) },
  { name: 'host with userinfo', bytes: req(['GET / HTTP/1.1', 'Host: user@a']) },
  { name: 'host with slash', bytes: req(['GET / HTTP/1.1', 'Host: a/b']) },
  // chunked framing
  { name: 'chunk size overflow', bytes: chunked('ffffffffffffffffffff\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size 2^64', bytes: chunked('10000000000000000\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size huge but fits', bytes: chunked('fffffffffffffff\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size negative', bytes: chunked('-1\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size 0x prefix', bytes: chunked('0x5\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size leading space', bytes: chunked(' 5\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size trailing space', bytes: chunked('5 \r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size trailing tab', bytes: chunked('5\t\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size empty', bytes: chunked('\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk size not hex', bytes: chunked('g\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size with underscore', bytes: chunked('1_0\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk ext space after semicolon', bytes: chunked('5; a=b\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext space before semicolon', bytes: chunked('5 ;a=b\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext space around =', bytes: chunked('5;a = b\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext empty', bytes: chunked('5;\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext empty name', bytes: chunked('5;=x\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext empty value', bytes: chunked('5;a=\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext double semicolon', bytes: chunked('5;;a\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext NUL', bytes: chunked('5;a\0\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext bare CR', bytes: chunked('5;a\rb\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext unterminated quote', bytes: chunked('5;a="b\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext junk after quote', bytes: chunked('5;a="b"c\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext NUL in quote', bytes: chunked('5;a="b\0"\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext bad char in value', bytes: chunked('5;a=b@c\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk ext long', bytes: chunked(`5;a=${'x'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`) },
  { name: 'chunk data too long', bytes: chunked('3\r\nhello\r\n0\r\n\r\n') },
  { name: 'chunk data too short', bytes: chunked('5\r\nhi\r\n0\r\n\r\n') },
  { name: 'chunk data without CRLF', bytes: chunked('5\r\nhello0\r\n\r\n') },
  { name: 'chunk data CR only', bytes: chunked('5\r\nhello\r0\r\n\r\n') },
  { name: 'last chunk missing final CRLF', bytes: chunked('5\r\nhello\r\n0\r\n') },
  { name: 'chunked without last chunk', bytes: chunked('5\r\nhello\r\n') },
  // trailers
  { name: 'trailer Content-Length', bytes: chunked('5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n') },
  {
    name: 'trailer Transfer-Encoding',
    bytes: chunked('5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n'),
  },
  { name: 'trailer Host', bytes: chunked('5\r\nhello\r\n0\r\nHost: other.example\r\n\r\n') },
  { name: 'trailer obs-fold', bytes: chunked('5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n') },
  { name: 'trailer NUL', bytes: chunked('5\r\nhello\r\n0\r\nX-T: a\0\r\n\r\n') },
  { name: 'trailer bare LF', bytes: chunked('5\r\nhello\r\n0\r\nX-T: a\n\r\n') },
  { name: 'trailer space before colon', bytes: chunked('5\r\nhello\r\n0\r\nX-T : a\r\n\r\n') },
  // connection state
  { name: 'request after Connection: close', bytes: Buffer.concat([get('Connection: close'), get()]) },
  { name: 'request after HTTP/1.0', bytes: Buffer.concat([req(['GET / HTTP/1.0']), get()]) },
  { name: 'garbage after request', bytes: Buffer.concat([get(), b('\0\0\0')]) },
  {
    name: 'smuggled request after body',
    bytes: Buffer.concat([post(['Content-Length: 3'], 'abc'), b('GET /x HTTP/1.1\nHost: a\n\n')]),
  },
  { name: 'truncated head', bytes: b('GET / HTTP/1.1\r\nHost: a\r\n') },
  { name: 'truncated request line', bytes: b('GET / HTT') },
  // limits (node:http's defaults: 16 KiB of head, 2000 header fields kept)
  { name: 'head over 16 KiB', bytes: get(`X-Big: ${'v'.repeat(17 * 1024)}`) },
  { name: 'target over 8 KiB', bytes: line(`GET /${'a'.repeat(9000)} HTTP/1.1`) },
  { name: 'header count over 100', bytes: get(...Array.from({ length: 150 }, (_, i) => `X-H${i}: ${i}`)) },
];

// --- seeded generators, for the fuzzing part of the differential test ----------------------------------

/** mulberry32: a small seeded PRNG, so generated inputs are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes that matter to an HTTP/1 parser: line ends, separators, digits, controls, obs-text. */
const MUTATION_BYTES = [
  13, 10, 0, 32, 9, 58, 44, 59, 34, 61, 48, 49, 53, 97, 65, 0x7f, 0x80, 0xff, 0x0b, 0x0c, 47, 42, 35, 64, 63,
  45, 120,
];

/** `n` valid requests with one to three bytes replaced, inserted or deleted. */
export function mutations(seed: number, n: number): Buffer[] {
  const rand = prng(seed);
  const base = [...VALID, ...UPGRADES].filter((c) => c.bytes.length < 2000);
  const out: Buffer[] = [];
  for (let k = 0; k < n; k++) {
    const bytes = [...base[Math.floor(rand() * base.length)].bytes];
    const edits = 1 + Math.floor(rand() * 3);
    for (let j = 0; j < edits; j++) {
      const pos = Math.floor(rand() * bytes.length);
      const byte = MUTATION_BYTES[Math.floor(rand() * MUTATION_BYTES.length)];
      const op = rand();
      if (op < 0.4) bytes[pos] = byte;
      else if (op < 0.8) bytes.splice(pos, 0, byte);
      else bytes.splice(pos, 1);
    }
    out.push(Buffer.from(bytes));
  }
  return out;
}

const FRAMING_LINES = [
  'Content-Length: 5',
  'Content-Length: 0',
  'Content-Length: 3',
  'Content-Length:  5 ',
  'content-length: 05',
  'Content-Length: 5, 5',
  'Transfer-Encoding: chunked',
  'transfer-encoding: Chunked',
  'Transfer-Encoding: gzip',
  'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: chunked, gzip',
  'Transfer-Encoding:  chunked ',
  'Connection: close',
  'Connection: keep-alive',
  'Connection: upgrade',
  'Upgrade: websocket',
  'Expect: 100-continue',
  'Host: a.example',
  'Host: b.example',
  'Trailer: X-T',
];
const FRAMING_BODIES = [
  '',
  'hello',
  'abc',
  '5\r\nhello\r\n0\r\n\r\n',
  '3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n',
  '0\r\n\r\n',
  'hello5\r\n',
];

/**
 * `n` requests built from framing header lines and bodies in random combinations (smuggling is
 * two parsers disagreeing on where a body ends), each followed by a second request half the time.
 */
export function framingCombos(seed: number, n: number): Buffer[] {
  const rand = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const out: Buffer[] = [];
  for (let k = 0; k < n; k++) {
    const lines = [`${pick(['POST', 'GET', 'PUT'])} /f HTTP/1.${rand() < 0.85 ? 1 : 0}`];
    const count = Math.floor(rand() * 4);
    if (rand() < 0.9) lines.push('Host: example.com');
    for (let j = 0; j < count; j++) lines.push(pick(FRAMING_LINES));
    let s = lines.join(CRLF) + CRLF + CRLF + pick(FRAMING_BODIES);
    if (rand() < 0.5) s += 'GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n';
    out.push(b(s));
  }
  return out;
}
