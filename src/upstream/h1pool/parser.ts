// A strict, incremental HTTP/1.1 RESPONSE parser for the upstream pool (RFC 9112), the counterpart of
// server/h1/parser.ts (which parses requests).
//
// - Incremental: `execute(buf, pos)` takes any split of the byte stream. A head (or trailer section)
//   cut by a chunk boundary is copied into a per-parser buffer until its blank line arrives; a cut
//   chunk-size line likewise. Everything else is parsed in place and body bytes are handed out as
//   zero-copy `subarray`s of the chunk.
// - A head is found with one native search for CRLFCRLF, decoded with one latin1 decode, and checked
//   byte by byte; the header object is built as forward.ts (and undici) expect it: lower-case names,
//   a string per field, an array for a repeated name.
// - Events go to one handler object (the connection), no closures. `onHead` and `onBody` return false
//   to stop `execute` right there (paused or aborted); it returns the position reached, and the
//   caller gives the rest again later. Errors are not thrown: ERROR is returned and `errorCode`
//   (llhttp's HPE_* names where llhttp has one) and `errorMessage` say why.
//
// Framing (RFC 9112 §6.3): no body for a response to HEAD, 1xx, 204 and 304; else chunked when
// Transfer-Encoding is there, Content-Length when it is, and otherwise the body runs to the end of
// the connection.
//
// At least as strict as Node's llhttp (default, non-lenient) on every input; the differential test
// (test/upstream/h1-response-differential.test.ts) checks it against node:http's client. STRICTER
// than llhttp, each refused:
// - versions other than HTTP/1.0 and HTTP/1.1 (llhttp also takes 0.9 and 2.0); status codes outside
//   100..599 (RFC 9110 §15); 101 (we never ask for an upgrade on this path).
// - exactly one SP between version and status; empty lines before the status line; control
//   characters in the reason phrase.
// - Transfer-Encoding other than a single `chunked` (llhttp reads `gzip` bodies to the close, which a
//   proxy would pass on without its coding); Transfer-Encoding in an HTTP/1.0 response; any
//   repeated Transfer-Encoding field.
// - Content-Length over 15 digits; chunk sizes over 2^49; chunk extensions with empty names or values,
//   and chunk-size lines over 4 KiB.
// - Content-Length and Transfer-Encoding in trailers.
import { HEX, HTAB, latin1, MAX_SAFE_CHUNK, QDTEXT, SP, TOKEN, VALUE } from '../../http1/bytes.ts';

export type ResponseHeaders = Record<string, string | string[]>;

/** Receives the parser's events. Implement it on a long-lived object (the connection). */
export interface H1ResponseHandler {
  /** A response head, 1xx included. Return false to stop `execute` after it. */
  onHead(status: number, reason: string, headers: ResponseHeaders): boolean;
  /** A piece of the body: a subarray of the buffer given to execute. Return false to stop after it. */
  onBody(chunk: Buffer): boolean;
  /** The response is complete; `trailers` is a shared empty object when there were none. */
  onComplete(trailers: ResponseHeaders): void;
}

/** execute's and finish's result when the input is refused. */
export const ERROR = -1;

/** How the body of the current response is delimited. */
export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
export const BODY_CLOSE = 3;

/** Trailers of a response that had none (frozen: handlers only read it). */
export const NO_TRAILERS: ResponseHeaders = Object.freeze({}) as ResponseHeaders;

// states
const S_HEAD = 0;
const S_BODY = 1;
const S_CLOSE_BODY = 2;
const S_CHUNK_SIZE = 3;
const S_CHUNK_DATA = 4;
const S_CHUNK_CR = 5;
const S_CHUNK_LF = 6;
const S_TRAILERS = 7;
const S_DONE = 8;
const S_ERROR = 9;

const CR = 13;
const LF = 10;
const COLON = 58;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

const MAX_CHUNK_LINE = 4096;

/** Is buf[start, start + s.length) the lower-case ASCII string s, ignoring case? (bytes already tokens) */
function equalsLower(buf: Buffer, start: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if ((buf[start + i] | 0x20) !== s.charCodeAt(i)) return false;
  return true;
}

// header kinds
const K_OTHER = 0;
const K_CONTENT_LENGTH = 1;
const K_TRANSFER_ENCODING = 2;
const K_CONNECTION = 3;
const K_KEEP_ALIVE = 4;

// Common response field names, by length: a match is returned as this (internalised) constant, so
// the name needs neither a substring nor toLowerCase, and the property store hits V8's fast path.
const KNOWN: string[][] = [];
for (const n of [
  'age',
  'via',
  'date',
  'etag',
  'vary',
  'link',
  'server',
  'expires',
  'location',
  'connection',
  'keep-alive',
  'set-cookie',
  'content-type',
  'x-powered-by',
  'x-request-id',
  'cache-control',
  'last-modified',
  'accept-ranges',
  'content-length',
  'content-encoding',
  'content-language',
  'content-location',
  'transfer-encoding',
  'strict-transport-security',
  'access-control-allow-origin',
]) {
  const list = KNOWN[n.length] ?? [];
  list.push(n);
  KNOWN[n.length] = list;
}

function knownName(buf: Buffer, start: number, len: number): string | undefined {
  const list = KNOWN[len];
  if (list === undefined) return undefined;
  for (let i = 0; i < list.length; i++) if (equalsLower(buf, start, list[i])) return list[i];
  return undefined;
}

function kindOf(name: string): number {
  switch (name) {
    case 'content-length':
      return K_CONTENT_LENGTH;
    case 'transfer-encoding':
      return K_TRANSFER_ENCODING;
    case 'connection':
      return K_CONNECTION;
    case 'keep-alive':
      return K_KEEP_ALIVE;
    default:
      return K_OTHER;
  }
}

/** Adds a field as undici's parseHeaders does: a string, then an array once the name repeats. */
function addField(obj: ResponseHeaders, name: string, value: string): void {
  const prev = obj[name];
  if (prev === undefined) {
    obj[name] = value;
  } else if (!Object.hasOwn(obj, name)) {
    // `constructor`, `__proto__`: an own property, never the prototype's
    Object.defineProperty(obj, name, { value, enumerable: true, configurable: true, writable: true });
  } else if (typeof prev === 'string') {
    obj[name] = [prev, value];
  } else {
    prev.push(value);
  }
}

export class H1ResponseParser {
  handler: H1ResponseHandler;
  /** Set when execute or finish returned ERROR. */
  errorCode: string;
  errorMessage: string;

  // the current response, valid once its (final) head is parsed
  status: number;
  versionMinor: number;
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
  /** `Keep-Alive: timeout=N` from the target, in seconds; -1 without one. */
  keepAliveTimeout: number;
  framing: number;

  private readonly maxHeadBytes: number;
  private state: number;
  /** The request was HEAD: no body whatever the head says. */
  private noBody: boolean;
  /** A head, trailer section or chunk-size line cut by a chunk boundary. */
  private pending: Buffer | null;
  private pendingLen: number;
  /** Head bytes of this response so far (1xx heads and trailers count too). */
  private headBytes: number;
  private remaining: number;
  // header-derived, per head
  private contentLength: number;
  private hasTransferEncoding: boolean;
  private connClose: boolean;
  private connKeepAlive: boolean;
  /** Set when a handler returned false, or the response completed, in the current execute call. */
  private stopped: boolean;

  constructor(handler: H1ResponseHandler, maxHeadBytes = 64 * 1024) {
    this.handler = handler;
    this.errorCode = '';
    this.errorMessage = '';
    this.status = 0;
    this.versionMinor = 1;
    this.keepAlive = false;
    this.keepAliveTimeout = -1;
    this.framing = BODY_NONE;
    this.maxHeadBytes = maxHeadBytes;
    this.state = S_DONE;
    this.noBody = false;
    this.pending = null;
    this.pendingLen = 0;
    this.headBytes = 0;
    this.remaining = 0;
    this.contentLength = -1;
    this.hasTransferEncoding = false;
    this.connClose = false;
    this.connKeepAlive = false;
    this.stopped = false;
  }

  /** Expects a new response, to a HEAD request when `head`. */
  start(head: boolean): void {
    this.state = S_HEAD;
    this.noBody = head;
    this.errorCode = '';
    this.errorMessage = '';
    this.status = 0;
    this.versionMinor = 1;
    this.keepAlive = false;
    this.keepAliveTimeout = -1;
    this.framing = BODY_NONE;
    this.pendingLen = 0;
    this.headBytes = 0;
    this.remaining = 0;
    this.startHead();
  }

  /** True once the final (non-1xx) head has been parsed. */
  get headDone(): boolean {
    return this.status >= 200;
  }

  /** True when the response is complete. */
  get done(): boolean {
    return this.state === S_DONE;
  }

  /**
   * Parses buf from `pos`. Returns the position reached: buf.length, or less when a handler stopped
   * it, or when the response completed before the end (the bytes after it are not ours). ERROR when
   * refused.
   */
  execute(buf: Buffer, pos: number): number {
    if (this.state === S_ERROR) return ERROR;
    const end = buf.length;
    this.stopped = false;
    if (this.pendingLen > 0) {
      const next = this.continuePending(buf, pos, end);
      if (next < 0) return next;
      if (next === end && this.pendingLen > 0) return end;
      pos = next;
      if (this.stopped) return pos;
    }
    for (;;) {
      const state = this.state;
      if (state === S_BODY) {
        const remaining = this.remaining;
        if (remaining === 0) {
          this.complete(NO_TRAILERS);
          return pos;
        }
        if (pos >= end) return pos;
        const n = Math.min(end - pos, remaining);
        this.remaining = remaining - n;
        const chunk = pos === 0 && n === end ? buf : buf.subarray(pos, pos + n);
        pos += n;
        if (!this.handler.onBody(chunk)) return pos;
        continue;
      }
      if (pos >= end) return pos;
      switch (state) {
        case S_HEAD:
        case S_TRAILERS: {
          const next = this.section(buf, pos, end);
          if (next < 0) return ERROR;
          pos = next;
          if (this.stopped) return pos;
          break;
        }
        case S_CHUNK_SIZE: {
          const lf = buf.indexOf(LF, pos);
          if (lf < 0 || lf - pos >= MAX_CHUNK_LINE) {
            if (end - pos >= MAX_CHUNK_LINE)
              return this.fail('HPE_CHUNK_EXTENSIONS_OVERFLOW', 'chunk size line too long');
            if (this.chunkLine(buf, pos, end, false) < 0) return ERROR; // fail early on a bad byte
            this.stash(buf, pos, end);
            return end;
          }
          if (this.chunkLine(buf, pos, lf + 1, true) < 0) return ERROR;
          pos = lf + 1;
          break;
        }
        case S_CHUNK_DATA: {
          const remaining = this.remaining;
          const n = Math.min(end - pos, remaining);
          this.remaining = remaining - n;
          const chunk = pos === 0 && n === end ? buf : buf.subarray(pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.state = S_CHUNK_CR;
          if (!this.handler.onBody(chunk)) return pos;
          break;
        }
        case S_CHUNK_CR:
          if (buf[pos] !== CR) return this.fail('HPE_STRICT', 'expected CRLF after chunk data');
          this.state = S_CHUNK_LF;
          pos++;
          break;
        case S_CHUNK_LF:
          if (buf[pos] !== LF) return this.fail('HPE_STRICT', 'expected CRLF after chunk data');
          this.state = S_CHUNK_SIZE;
          pos++;
          break;
        case S_CLOSE_BODY: {
          const chunk = pos === 0 ? buf : buf.subarray(pos);
          pos = end;
          if (!this.handler.onBody(chunk)) return pos;
          break;
        }
        default:
          return pos; // S_DONE: what follows is not part of this response
      }
    }
  }

  /**
   * The target ended the connection. 0 when that ends the response (a body delimited by the close)
   * or nothing was expected; ERROR when the response was cut short, with the code undici uses:
   * UND_ERR_SOCKET when the response said the connection would stay open, otherwise
   * UND_ERR_RES_CONTENT_LENGTH_MISMATCH (a short Content-Length body) or HPE_INVALID_EOF_STATE.
   */
  finish(): number {
    const state = this.state;
    if (state === S_ERROR) return ERROR;
    if (state === S_DONE) return 0;
    if (state === S_CLOSE_BODY) {
      this.complete(NO_TRAILERS);
      return 0;
    }
    if (this.status < 200 || this.keepAlive) return this.fail('UND_ERR_SOCKET', 'other side closed');
    if (state === S_BODY) {
      return this.fail(
        'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
        `response body ended after ${this.contentLength - this.remaining} of ${this.contentLength} bytes`,
      );
    }
    return this.fail('HPE_INVALID_EOF_STATE', 'connection closed in the middle of a chunked body');
  }

  // --- sections: the head and the trailers -----------------------------------------------------------

  private section(buf: Buffer, pos: number, end: number): number {
    const trailer = this.state === S_TRAILERS;
    if (trailer && buf[pos] === CR) {
      // no trailers: just the blank line
      if (pos + 1 >= end) {
        this.stash(buf, pos, end);
        return end;
      }
      if (buf[pos + 1] !== LF) return this.fail('HPE_LF_EXPECTED', 'expected LF after CR');
      this.complete(NO_TRAILERS);
      return pos + 2;
    }
    const budget = this.maxHeadBytes - this.headBytes;
    const idx = buf.indexOf(CRLFCRLF, pos);
    if (idx < 0 || idx + 4 - pos > budget) {
      if (end - pos > budget || idx >= 0) return this.overflow();
      if (this.precheck(buf, pos, end, 0) < 0) return ERROR;
      this.stash(buf, pos, end);
      return end;
    }
    const next = idx + 4;
    this.headBytes += next - pos;
    const r = trailer ? this.parseTrailers(buf, pos, next) : this.parseHead(buf, pos, next);
    return r < 0 ? ERROR : next;
  }

  /** Adds the next bytes to a pending section or chunk-size line; parses it once complete. */
  private continuePending(buf: Buffer, pos: number, end: number): number {
    const old = this.pendingLen;
    const state = this.state;
    if (state === S_CHUNK_SIZE) {
      const lf = buf.indexOf(LF, pos);
      const take = lf < 0 ? end - pos : lf + 1 - pos;
      if (old + take > MAX_CHUNK_LINE)
        return this.fail('HPE_CHUNK_EXTENSIONS_OVERFLOW', 'chunk size line too long');
      this.append(buf, pos, take);
      const p = this.pending!;
      if (lf < 0) {
        if (this.chunkLine(p, 0, this.pendingLen, false) < 0) return ERROR;
        return end;
      }
      this.pendingLen = 0;
      if (this.chunkLine(p, 0, old + take, true) < 0) return ERROR;
      return pos + take;
    }
    // a head or trailer section
    const budget = this.maxHeadBytes - this.headBytes;
    const room = budget - old;
    const take = Math.min(end - pos, room);
    this.append(buf, pos, take);
    const p = this.pending!;
    const len = this.pendingLen;
    if (state === S_TRAILERS && p[0] === CR) {
      if (len < 2) return end;
      this.pendingLen = 0;
      if (p[1] !== LF) return this.fail('HPE_LF_EXPECTED', 'expected LF after CR');
      this.complete(NO_TRAILERS);
      return pos + 2 - old;
    }
    const idx = p.subarray(0, len).indexOf(CRLFCRLF, old > 3 ? old - 3 : 0);
    if (idx < 0) {
      if (take < end - pos) return this.overflow();
      if (this.precheck(p, 0, len, old) < 0) return ERROR;
      return end;
    }
    const next = idx + 4;
    this.pendingLen = 0;
    this.headBytes += next;
    const r = state === S_TRAILERS ? this.parseTrailers(p, 0, next) : this.parseHead(p, 0, next);
    if (r < 0) return ERROR;
    // Drop a large pending buffer once done; idle connections should hold nothing big.
    if (p.length > 4096) this.pending = null;
    return pos + (next - old);
  }

  /**
   * A section not complete yet: refuse now what can be refused (a bare LF, a NUL, a status line that
   * is not HTTP/1.x), rather than wait for the size limit or a timeout. `from`: bytes already checked.
   */
  private precheck(buf: Buffer, start: number, end: number, from: number): number {
    for (let i = start + Math.max(from, 0); i < end; i++) {
      const c = buf[i];
      if (c === LF && (i === start || buf[i - 1] !== CR))
        return this.fail('HPE_CR_EXPECTED', 'LF without CR');
      if (c === 0) return this.fail('HPE_INVALID_HEADER_TOKEN', 'NUL in the head');
    }
    if (this.state === S_HEAD) {
      const n = Math.min(end - start, 8);
      for (let i = 0; i < n; i++) {
        if (buf[start + i] !== STATUS_PREFIX[i] && !(i === 7 && buf[start + i] === 48)) {
          return this.fail(
            i < 5 ? 'HPE_INVALID_CONSTANT' : 'HPE_INVALID_VERSION',
            'not an HTTP/1.x response',
          );
        }
      }
    }
    return 0;
  }

  private stash(buf: Buffer, start: number, end: number): void {
    const len = end - start;
    let p = this.pending;
    if (p === null || p.length < len) p = this.pending = Buffer.allocUnsafe(len < 512 ? 512 : len * 2);
    buf.copy(p, 0, start, end);
    this.pendingLen = len;
  }

  private append(buf: Buffer, start: number, n: number): void {
    const need = this.pendingLen + n;
    let p = this.pending!;
    if (p.length < need) {
      const bigger = Buffer.allocUnsafe(need * 2);
      p.copy(bigger, 0, 0, this.pendingLen);
      p = this.pending = bigger;
    }
    buf.copy(p, this.pendingLen, start, start + n);
    this.pendingLen = need;
  }

  private overflow(): number {
    return this.fail('UND_ERR_HEADERS_OVERFLOW', 'response head larger than the limit');
  }

  // --- the head -----------------------------------------------------------------------------------

  private startHead(): void {
    this.contentLength = -1;
    this.hasTransferEncoding = false;
    this.connClose = false;
    this.connKeepAlive = false;
    this.keepAliveTimeout = -1;
  }

  /** status-line *( field-line CRLF ) CRLF, in buf[s, e) (e is just past the blank line). */
  private parseHead(buf: Buffer, s: number, e: number): number {
    // HTTP-version SP status-code [ SP reason-phrase ] CRLF
    for (let i = 0; i < 5; i++) {
      if (buf[s + i] !== STATUS_PREFIX[i]) return this.fail('HPE_INVALID_CONSTANT', 'expected HTTP/');
    }
    const minor = buf[s + 7] - 48;
    if (buf[s + 5] !== 49 || buf[s + 6] !== 46 || (minor !== 0 && minor !== 1)) {
      return this.fail('HPE_INVALID_VERSION', 'only HTTP/1.0 and HTTP/1.1');
    }
    if (buf[s + 8] !== SP) return this.fail('HPE_INVALID_VERSION', 'expected one SP after the version');
    const d1 = buf[s + 9] - 48;
    const d2 = buf[s + 10] - 48;
    const d3 = buf[s + 11] - 48;
    if (d1 < 1 || d1 > 5 || d2 < 0 || d2 > 9 || d3 < 0 || d3 > 9) {
      return this.fail('HPE_INVALID_STATUS', 'invalid status code');
    }
    const status = d1 * 100 + d2 * 10 + d3;
    let i = s + 12;
    let c = buf[i];
    let reasonStart = i;
    if (c === SP) {
      reasonStart = ++i;
      while (VALUE[buf[i]] === 1) i++;
      c = buf[i];
    }
    const reasonEnd = i;
    if (c !== CR) {
      if (c === LF) return this.fail('HPE_CR_EXPECTED', 'LF without CR after the status line');
      return this.fail('HPE_INVALID_STATUS', 'invalid character in the status line');
    }
    if (buf[i + 1] !== LF) return this.fail('HPE_LF_EXPECTED', 'expected LF after CR');
    i += 2;
    if (status === 101) return this.fail('HPE_INVALID_STATUS', '101 Switching Protocols was not asked for');

    // One decode for the whole head; names and values are substrings of it.
    const text = latin1(buf, s, e - 2);
    const reason = reasonEnd === reasonStart ? '' : text.slice(reasonStart - s, reasonEnd - s);
    const headers: ResponseHeaders = {};
    this.startHead();
    const last = e - 2;
    while (i < last) {
      const next = this.fieldLine(buf, i, s, text, headers, false);
      if (next < 0) return ERROR;
      i = next;
    }
    return this.headComplete(status, minor, reason, headers);
  }

  /**
   * One field line at buf[i] (the section ends with CRLF CRLF, so every scan stops by then).
   * Returns the position after its CRLF.
   */
  private fieldLine(
    buf: Buffer,
    i: number,
    s: number,
    text: string,
    obj: ResponseHeaders,
    trailer: boolean,
  ): number {
    const nameStart = i;
    while (TOKEN[buf[i]] === 1) i++;
    const nameEnd = i;
    let c = buf[i];
    if (c !== COLON || nameEnd === nameStart) {
      if (nameEnd === nameStart && (c === SP || c === HTAB)) {
        return this.fail('HPE_INVALID_HEADER_TOKEN', 'line folding or whitespace before a field name');
      }
      if (c === LF) return this.fail('HPE_CR_EXPECTED', 'LF without CR');
      return this.fail('HPE_INVALID_HEADER_TOKEN', 'invalid character in a field name');
    }
    const colon = i++;
    while (buf[i] === SP || buf[i] === HTAB) i++;
    const valueStart = i;
    while (VALUE[buf[i]] === 1) i++;
    c = buf[i];
    if (c !== CR) {
      if (c === LF) return this.fail('HPE_CR_EXPECTED', 'LF without CR');
      return this.fail('HPE_INVALID_HEADER_TOKEN', 'invalid character in a field value');
    }
    if (buf[i + 1] !== LF) return this.fail('HPE_LF_EXPECTED', 'CR without LF in a field');
    let valueEnd = i;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    const len = nameEnd - nameStart;
    let name = knownName(buf, nameStart, len);
    if (name === undefined) {
      name = text.slice(nameStart - s, nameEnd - s);
      for (let k = nameStart; k < nameEnd; k++) {
        const b = buf[k];
        if (b >= 65 && b <= 90) {
          name = name.toLowerCase();
          break;
        }
      }
    }
    const kind = kindOf(name);
    if (kind !== K_OTHER) {
      if (trailer) {
        if (kind === K_CONTENT_LENGTH || kind === K_TRANSFER_ENCODING)
          return this.fail('HPE_INVALID_TRAILER', `${name} in trailers`);
      } else if (this.special(kind, buf, valueStart, valueEnd, colon + 1, i) < 0) {
        return ERROR;
      }
    }
    addField(obj, name, valueEnd === valueStart ? '' : text.slice(valueStart - s, valueEnd - s));
    return i + 2;
  }

  /** Framing and connection fields: the value in [start, end), the whole field value in [rawStart, rawEnd). */
  private special(
    kind: number,
    buf: Buffer,
    start: number,
    end: number,
    rawStart: number,
    rawEnd: number,
  ): number {
    switch (kind) {
      case K_CONTENT_LENGTH: {
        if (this.contentLength !== -1)
          return this.fail('HPE_UNEXPECTED_CONTENT_LENGTH', 'duplicate Content-Length');
        const len = end - start;
        if (len === 0 || len > 15) return this.fail('HPE_INVALID_CONTENT_LENGTH', 'invalid Content-Length');
        let n = 0;
        for (let i = start; i < end; i++) {
          const d = buf[i] - 48;
          if (d < 0 || d > 9) return this.fail('HPE_INVALID_CONTENT_LENGTH', 'invalid Content-Length');
          n = n * 10 + d;
        }
        this.contentLength = n;
        return 0;
      }
      case K_TRANSFER_ENCODING:
        if (this.hasTransferEncoding)
          return this.fail('HPE_INVALID_TRANSFER_ENCODING', 'more than one Transfer-Encoding');
        this.hasTransferEncoding = true;
        // llhttp takes `chunked<HTAB>` for another coding (a body to the close): no HTAB anywhere
        for (let i = rawStart; i < rawEnd; i++) {
          if (buf[i] === HTAB) return this.fail('HPE_INVALID_TRANSFER_ENCODING', 'HTAB in Transfer-Encoding');
        }
        if (end - start !== 7 || !equalsLower(buf, start, 'chunked')) {
          return this.fail('HPE_INVALID_TRANSFER_ENCODING', 'only Transfer-Encoding: chunked is accepted');
        }
        return 0;
      case K_CONNECTION:
        for (let i = start; i < end; ) {
          while (i < end && (buf[i] === SP || buf[i] === HTAB || buf[i] === 44)) i++;
          const a = i;
          while (i < end && buf[i] !== 44) i++;
          let b = i;
          while (b > a && (buf[b - 1] === SP || buf[b - 1] === HTAB)) b--;
          if (b - a === 5 && equalsLower(buf, a, 'close')) this.connClose = true;
          else if (b - a === 10 && equalsLower(buf, a, 'keep-alive')) this.connKeepAlive = true;
        }
        return 0;
      case K_KEEP_ALIVE:
        // undici's rule: /(?:^|,)[\t ]*timeout=(\d+)/i, on the first Keep-Alive field that has it
        if (this.keepAliveTimeout !== -1) return 0;
        for (let i = start; i < end; ) {
          while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
          if (end - i > 8 && equalsLower(buf, i, 'timeout=')) {
            let k = i + 8;
            let n = 0;
            while (k < end && k < i + 18 && buf[k] >= 48 && buf[k] <= 57) n = n * 10 + buf[k++] - 48;
            if (k > i + 8) {
              this.keepAliveTimeout = n;
              return 0;
            }
          }
          while (i < end && buf[i] !== 44) i++;
          i++;
        }
        return 0;
    }
    return 0;
  }

  private headComplete(status: number, minor: number, reason: string, headers: ResponseHeaders): number {
    if (status < 200) {
      // 1xx: informational, then another head (RFC 9110 §15.2). No body whatever it says. Not in
      // HTTP/1.0, and not one that closes the connection (llhttp refuses what follows those).
      if (minor === 0) return this.fail('HPE_INVALID_STATUS', '1xx response in HTTP/1.0');
      if (this.connClose) return this.fail('HPE_CLOSED_CONNECTION', '1xx response with Connection: close');
      if (!this.handler.onHead(status, reason, headers)) this.stopped = true;
      return 0;
    }
    this.status = status;
    this.versionMinor = minor;
    let keepAlive = minor === 1 ? !this.connClose : this.connKeepAlive && !this.connClose;
    const te = this.hasTransferEncoding;
    const cl = this.contentLength;
    let framing: number;
    if (te && cl !== -1) {
      return this.fail(
        'HPE_INVALID_TRANSFER_ENCODING',
        "Transfer-Encoding can't be present with Content-Length",
      );
    }
    if (this.noBody || status === 204 || status === 304) {
      // A 204/304 that announces a body may send one, which would be read as the next response:
      // take the response, not the connection (as undici).
      if (!this.noBody && (te || cl > 0)) keepAlive = false;
      framing = BODY_NONE;
      this.state = S_BODY;
      this.remaining = 0;
    } else if (te) {
      if (minor === 0) return this.fail('HPE_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding in HTTP/1.0');
      framing = BODY_CHUNKED;
      this.state = S_CHUNK_SIZE;
    } else if (cl !== -1) {
      framing = BODY_LENGTH;
      this.state = S_BODY;
      this.remaining = cl;
    } else {
      framing = BODY_CLOSE;
      keepAlive = false;
      this.state = S_CLOSE_BODY;
    }
    this.framing = framing;
    this.keepAlive = keepAlive;
    if (!this.handler.onHead(status, reason, headers)) this.stopped = true;
    return 0;
  }

  private parseTrailers(buf: Buffer, s: number, e: number): number {
    const text = latin1(buf, s, e - 2);
    const trailers: ResponseHeaders = {};
    const last = e - 2;
    let i = s;
    while (i < last) {
      const next = this.fieldLine(buf, i, s, text, trailers, true);
      if (next < 0) return ERROR;
      i = next;
    }
    this.complete(trailers);
    return 0;
  }

  // --- chunked ------------------------------------------------------------------------------------

  /**
   * chunk-size [ chunk-ext ] CRLF in buf[start, end), with chunk-ext = *( ";" token [ "=" ( token /
   * quoted-string ) ] ) and no whitespace (as llhttp). `whole`: the line ends at end (with its LF);
   * otherwise only what is there is checked.
   */
  private chunkLine(buf: Buffer, start: number, end: number, whole: boolean): number {
    let i = start;
    let size = 0;
    while (i < end) {
      const h = HEX[buf[i]];
      if (h < 0) break;
      if (size >= MAX_SAFE_CHUNK) return this.fail('HPE_INVALID_CHUNK_SIZE', 'chunk size too large');
      size = size * 16 + h;
      i++;
    }
    if (i >= end) return 0;
    if (i === start) return this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size');
    let c = buf[i];
    while (c === 59) {
      const a = ++i;
      while (i < end && TOKEN[buf[i]] === 1) i++;
      if (i >= end) return 0;
      if (i === a) return this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk extension');
      c = buf[i];
      if (c === 61) {
        if (++i >= end) return 0;
        if (buf[i] === 34) {
          i++;
          for (;;) {
            if (i >= end) return 0;
            c = buf[i];
            if (c === 34) break;
            if (c === 92) {
              if (++i >= end) return 0;
              c = buf[i];
              if (c !== HTAB && (c < 32 || c === 127))
                return this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk extension');
            } else if (QDTEXT[c] !== 1) {
              return this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk extension');
            }
            i++;
          }
          i++;
        } else {
          const v = i;
          while (i < end && TOKEN[buf[i]] === 1) i++;
          if (i === v && i < end) return this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk extension');
        }
        if (i >= end) return 0;
        c = buf[i];
      }
    }
    if (c !== CR) {
      if (c === LF) return this.fail('HPE_CR_EXPECTED', 'LF without CR after the chunk size');
      return this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid character in chunk size');
    }
    if (i + 1 >= end) return whole ? this.fail('HPE_LF_EXPECTED', 'expected LF after CR') : 0;
    // (a partial line has no LF, so a CR inside it is a CR without LF)
    if (buf[i + 1] !== LF || i + 2 !== end) return this.fail('HPE_LF_EXPECTED', 'expected LF after CR');
    if (size === 0) {
      this.state = S_TRAILERS;
    } else {
      this.remaining = size;
      this.state = S_CHUNK_DATA;
    }
    return 0;
  }

  // --- messages -----------------------------------------------------------------------------------

  private complete(trailers: ResponseHeaders): void {
    this.state = S_DONE;
    this.stopped = true;
    this.handler.onComplete(trailers);
  }

  private fail(code: string, message: string): number {
    this.state = S_ERROR;
    this.errorCode = code;
    this.errorMessage = message;
    this.pendingLen = 0;
    return ERROR;
  }
}

const STATUS_PREFIX = Buffer.from('HTTP/1.1', 'latin1');
