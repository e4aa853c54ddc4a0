// A strict, incremental HTTP/1.1 request parser (RFC 9112) for the hot path of our own server engine.
//
// - Incremental: `execute(chunk)` takes any split of the byte stream, one byte at a time included.
//   Lines cut by a chunk boundary are copied into a small per-parser buffer that exists only while a
//   line is incomplete; everything else is parsed in place, and body bytes are handed out as
//   zero-copy `subarray`s of the chunk.
// - Events go to one handler object set once (no per-request closures): onHead, onBody, onTrailers,
//   onMessageComplete. Errors are not thrown: `execute` returns ERROR and the parser keeps the code,
//   the status to answer (400, 413, 414, 431, 501, 505) and a reason. An error can come after onHead
//   (in the body, or 413 once setBodyLimit lowered the limit): then the request is already out.
// - At least as strict as Node's llhttp in its default (non-lenient) mode on every input, and
//   stricter where RFC 9112 allows a server to refuse (see STRICTER below). The differential test
//   (test/server/h1-differential.test.ts) checks this against a real node:http server.
//
// STRICTER than llhttp (each refused with 400 unless said otherwise):
// - only HTTP/1.0 and HTTP/1.1 (llhttp also takes 0.9 and 2.0, and a request line without a version);
//   a well-formed other version is 505.
// - exactly one SP between the parts of the request line; only CRLF line endings (no leading bare LF).
// - request-target forms per RFC 9112 §3.2: origin-form, absolute-form (http/https, no userinfo), `*`
//   only for OPTIONS, authority-form (host:port) only and always for CONNECT; no `#` fragment, no
//   empty host in absolute-form.
// - an HTTP/1.1 request needs exactly one Host; more than one Host is refused in any version.
// - Transfer-Encoding: a list of tokens ending in a single `chunked`; other codings before it are
//   501 (llhttp passes `gzip, chunked` through); any HTAB after `chunked`, empty list elements and
//   transfer-coding parameters are 400; Transfer-Encoding in an HTTP/1.0 request is 400.
// - CONNECT with a body (Content-Length > 0 or Transfer-Encoding).
// - Host values that are not uri-host [":" port] characters (no spaces, '@', '/').
// - a well-formed but unknown method is 501 (llhttp: 400); llhttp's RTSP/ICE methods and PRI are refused.
// - Content-Length over 15 digits; chunk sizes over 2^53; empty chunk-extension names or values.
// - Content-Length, Transfer-Encoding and Host in trailers.
// - limits: head bytes count the whole head (llhttp's counter leaves out the method and line
//   endings), too many header fields is 431 (node drops the extra ones), and a chunk-size line
//   (with its extensions) longer than maxChunkLineBytes.
import {
  HEX,
  HTAB,
  isAlnum,
  latin1,
  MAX_SAFE_CHUNK,
  QDTEXT,
  SP,
  TOKEN,
  table,
  VALUE,
} from '../../http1/bytes.ts';

type Handler = H1Handler;

/** Receives the parser's events. Implement it on a long-lived object (the connection), not closures. */
export interface H1Handler {
  /**
   * The request head. `rawHeaders` is [name, value, name, value, ...] as sent (names in their case,
   * values without surrounding whitespace, latin1). `flags` holds FLAG_* bits and the BODY_* kind;
   * `contentLength` is the body length for BODY_LENGTH, 0 for BODY_NONE, -1 for BODY_CHUNKED.
   */
  onHead(
    method: string,
    target: string,
    versionMinor: number,
    rawHeaders: string[],
    flags: number,
    contentLength: number,
  ): void;
  /** A piece of the body: a subarray of the chunk given to execute (valid only until it returns). */
  onBody(chunk: Buffer): void;
  /** Trailer fields of a chunked body, when there are any (before onMessageComplete). */
  onTrailers(rawTrailers: string[]): void;
  onMessageComplete(): void;
}

export interface H1Limits {
  /** Request line and header section, line endings included (431 past it; 414 if the target is). */
  maxHeadBytes: number;
  /** Length of the request-target (414 past it). */
  maxUriLength: number;
  /** Number of header fields (431 past it). The same limits apply to the trailer section. */
  maxHeaderCount: number;
  /** Body bytes (413 past it). Can be lowered for the current request with setBodyLimit. */
  maxBodyBytes?: number;
  /** A chunk-size line with its extensions (400 past it). Default 4096. */
  maxChunkLineBytes?: number;
  /** Refuse an HTTP/1.1 request without Host (RFC 9112 §3.2). Default true. */
  requireHost?: boolean;
}

// flags given to onHead
export const FLAG_KEEP_ALIVE = 1;
/** CONNECT, or Upgrade with Connection: upgrade. The parser pauses once the message completes. */
export const FLAG_UPGRADE = 2;
/** HTTP/1.1 with Expect: 100-continue. */
export const FLAG_EXPECT_CONTINUE = 4;
/** HTTP/1.1 with an Expect other than 100-continue (answer 417). */
export const FLAG_EXPECT_OTHER = 8;
export const FLAG_CONNECT = 16;
export const BODY_NONE = 0;
export const BODY_LENGTH = 32;
export const BODY_CHUNKED = 64;
export const BODY_MASK = 96;

/** execute's and finish's result when the input is refused. */
export const ERROR = -1;

// states
const S_START = 0;
const S_HEADER = 1;
const S_BODY = 2;
const S_CHUNK_SIZE = 3;
const S_CHUNK_DATA = 4;
const S_CHUNK_CR = 5;
const S_CHUNK_LF = 6;
const S_TRAILER = 7;
const S_UPGRADED = 8;
const S_CLOSED = 9;
const S_ERROR = 10;

const INCOMPLETE = -2;

const CR = 13;
const LF = 10;
const COLON = 58;

// header kinds
const K_OTHER = 0;
const K_HOST = 1;
const K_CONTENT_LENGTH = 2;
const K_TRANSFER_ENCODING = 3;
const K_CONNECTION = 4;
const K_UPGRADE = 5;
const K_EXPECT = 6;

// header-derived bits (internal)
const H_CONTENT_LENGTH = 1;
const H_TRANSFER_ENCODING = 2;
const H_CONN_CLOSE = 4;
const H_CONN_KEEP_ALIVE = 8;
const H_CONN_UPGRADE = 16;
const H_UPGRADE = 32;
const H_EXPECT_CONTINUE = 64;
const H_EXPECT_OTHER = 128;

/** request-target bytes: VCHAR except '#'. */
const TARGET = table((c) => c > 32 && c < 127 && c !== 35);
/** authority bytes (reg-name, IP-literal, port): unreserved, pct-encoded, sub-delims, ':', '[', ']'. */
const AUTHORITY = table((c) => isAlnum(c) || "-._~%!$&'()*+,;=:[]".includes(String.fromCharCode(c)));

// Methods llhttp accepts for HTTP/1.x (its METHODS_HTTP), minus PRI (the HTTP/2 preface).
const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
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
const MAX_METHOD = 16;
const VERSION_SHAPE = 'HTTP/1.1\r\n';

/** Is buf[start, start + s.length) equal to the ASCII string s (exactly)? */
function equals(buf: Buffer, start: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (buf[start + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** Is buf[start, start + s.length) equal to the lower-case ASCII string s, ignoring case? */
function equalsLower(buf: Buffer, start: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if ((buf[start + i] | 0x20) !== s.charCodeAt(i)) return false;
  return true;
}

function methodName(buf: Buffer, start: number, len: number): string | null {
  const c = buf[start];
  if (len === 3 && c === 71 && buf[start + 1] === 69 && buf[start + 2] === 84) return 'GET';
  if (len === 4 && c === 80 && equals(buf, start, 'POST')) return 'POST';
  for (let i = 0; i < METHODS.length; i++) {
    const m = METHODS[i];
    if (m.length === len && m.charCodeAt(0) === c && equals(buf, start, m)) return m;
  }
  return null;
}

/** Which special header a name of `len` bytes at `start` is (case-insensitive). */
function headerKind(buf: Buffer, start: number, len: number): number {
  switch (len) {
    case 4:
      return equalsLower(buf, start, 'host') ? K_HOST : K_OTHER;
    case 6:
      return equalsLower(buf, start, 'expect') ? K_EXPECT : K_OTHER;
    case 7:
      return equalsLower(buf, start, 'upgrade') ? K_UPGRADE : K_OTHER;
    case 10:
      return equalsLower(buf, start, 'connection') ? K_CONNECTION : K_OTHER;
    case 14:
      return equalsLower(buf, start, 'content-length') ? K_CONTENT_LENGTH : K_OTHER;
    case 17:
      return equalsLower(buf, start, 'transfer-encoding') ? K_TRANSFER_ENCODING : K_OTHER;
    default:
      return K_OTHER;
  }
}

// Strings are the main cost of a head: each decode from a Buffer is a call into C++ (~100 ns). So the
// target and the fields are recorded as offsets while their lines are checked, and decoded in one go
// at the end of the head (or of the execute call, or of a line put together from pieces): one latin1
// decode of the span they cover, then substrings of it, which V8 makes without leaving JavaScript.
// The records never outlive an execute call, so one scratch array serves every parser.
const REC_MAX = 128;
/** [nameStart, nameEnd, valueStart, valueEnd] per field; nameStart -1 marks the request-target. */
const rec = new Int32Array(REC_MAX * 4);
let recCount = 0;

export class H1Parser {
  handler: Handler;
  /** Set when execute or finish returned ERROR: a stable code, the status to answer and why. */
  errorCode: string;
  errorStatus: number;
  errorReason: string;

  private readonly maxHeadBytes: number;
  private readonly maxUriLength: number;
  private readonly maxHeaderCount: number;
  private readonly maxBodyBytes: number;
  private readonly maxChunkLineBytes: number;
  private readonly requireHost: boolean;

  private state: number;
  private paused: boolean;
  /** A line cut by a chunk boundary, until its LF arrives. */
  private pending: Buffer | null;
  private pendingLen: number;
  /** Bytes of the current head (or trailer section) in completed lines. */
  private headBytes: number;
  private headerCount: number;

  // the message being parsed
  private method: string;
  private target: string;
  private versionMinor: number;
  private raw: string[];
  private trailers: string[] | null;
  private hflags: number;
  private hostCount: number;
  private contentLength: number;
  private teElements: number;
  private teChunked: number;
  private teLastChunked: boolean;
  private keepAlive: boolean;
  private upgrade: boolean;
  private bodyLimit: number;
  private bodyBytes: number;
  private remaining: number;

  constructor(handler: Handler, limits: H1Limits) {
    this.handler = handler;
    this.errorCode = '';
    this.errorStatus = 0;
    this.errorReason = '';
    this.maxHeadBytes = limits.maxHeadBytes;
    this.maxUriLength = limits.maxUriLength;
    this.maxHeaderCount = limits.maxHeaderCount;
    this.maxBodyBytes = limits.maxBodyBytes ?? Number.MAX_SAFE_INTEGER;
    this.maxChunkLineBytes = limits.maxChunkLineBytes ?? 4096;
    this.requireHost = limits.requireHost ?? true;
    this.state = S_START;
    this.paused = false;
    this.pending = null;
    this.pendingLen = 0;
    this.headBytes = 0;
    this.headerCount = 0;
    this.method = '';
    this.target = '';
    this.versionMinor = 1;
    this.raw = [];
    this.trailers = null;
    this.hflags = 0;
    this.hostCount = 0;
    this.contentLength = 0;
    this.teElements = 0;
    this.teChunked = 0;
    this.teLastChunked = false;
    this.keepAlive = true;
    this.upgrade = false;
    this.bodyLimit = this.maxBodyBytes;
    this.bodyBytes = 0;
    this.remaining = 0;
  }

  /** Back to the start of a fresh connection (to reuse the parser). */
  reset(): void {
    this.state = S_START;
    this.paused = false;
    this.pending = null;
    this.pendingLen = 0;
    this.errorCode = '';
    this.errorStatus = 0;
    this.errorReason = '';
    this.startMessage();
  }

  /** True between messages: nothing of a next request has been read yet. */
  get idle(): boolean {
    return (this.state === S_START && this.pendingLen === 0) || this.state === S_CLOSED;
  }

  /** True once a CONNECT or upgrade request completed: the bytes after it are not HTTP/1. */
  get upgraded(): boolean {
    return this.state === S_UPGRADED;
  }

  /** Lowers (or raises) the body limit for the current request, e.g. from onHead once routed. */
  setBodyLimit(bytes: number): void {
    this.bodyLimit = bytes;
  }

  /**
   * Stops execute after the current event: it returns the bytes consumed so far, and the caller
   * gives the rest again after resume().
   */
  pause(): void {
    this.paused = true;
  }

  /** Resumes after pause(), or parses HTTP again after an upgrade the caller declined. */
  resume(): void {
    this.paused = false;
    if (this.state === S_UPGRADED) this.state = this.keepAlive ? S_START : S_CLOSED;
  }

  /**
   * Parses `chunk`. Returns the number of bytes consumed: all of them, or fewer when paused (by
   * pause(), or after an upgrade request: the rest is the upgraded protocol's). ERROR when refused.
   */
  execute(chunk: Buffer): number {
    const n = this.run(chunk);
    if (recCount !== 0) {
      if (n === ERROR) recCount = 0;
      else this.flush(chunk);
    }
    return n;
  }

  private run(chunk: Buffer): number {
    if (this.state === S_ERROR) return ERROR;
    if (this.paused || this.state === S_UPGRADED) return 0;
    const end = chunk.length;
    let pos = 0;
    if (this.pendingLen > 0) {
      pos = this.continueLine(chunk);
      if (pos < 0) return pos;
      if (this.paused || this.state === S_UPGRADED) return pos;
    }
    while (pos < end) {
      const state = this.state;
      if (state === S_START || state === S_HEADER || state === S_TRAILER || state === S_CHUNK_SIZE) {
        let budget: number;
        if (state === S_CHUNK_SIZE) budget = this.maxChunkLineBytes;
        else budget = this.maxHeadBytes - this.headBytes;
        const limit = end - pos > budget ? pos + budget : end;
        let next: number;
        if (state === S_HEADER) next = this.headerLine(chunk, pos, limit, false);
        else if (state === S_START) next = this.requestLine(chunk, pos, limit);
        else if (state === S_CHUNK_SIZE) next = this.chunkSizeLine(chunk, pos, limit);
        else next = this.headerLine(chunk, pos, limit, true);
        if (next === INCOMPLETE) {
          if (limit < end) return this.lineTooLong(chunk, pos, limit);
          return this.stash(chunk, pos, end);
        }
        if (next < 0) return ERROR;
        pos = next;
      } else if (state === S_BODY || state === S_CHUNK_DATA) {
        const avail = end - pos;
        const n = Math.min(avail, this.remaining);
        this.remaining -= n;
        const body = chunk.subarray(pos, pos + n);
        pos += n;
        const done = this.remaining === 0;
        if (done && state === S_CHUNK_DATA) this.state = S_CHUNK_CR;
        this.handler.onBody(body);
        // A message's last body bytes complete it even if onBody paused: no later call would.
        if (done && state === S_BODY && this.complete() < 0) return ERROR;
      } else if (state === S_CHUNK_CR) {
        if (chunk[pos] !== CR) return this.fail('INVALID_CHUNK', 400, 'expected CRLF after chunk data');
        this.state = S_CHUNK_LF;
        pos++;
      } else if (state === S_CHUNK_LF) {
        if (chunk[pos] !== LF) return this.fail('INVALID_CHUNK', 400, 'expected CRLF after chunk data');
        this.state = S_CHUNK_SIZE;
        pos++;
      } else if (state === S_CLOSED) {
        // llhttp's rule: after a message that does not keep the connection, only CR and LF may follow.
        const c = chunk[pos];
        if (c !== CR && c !== LF) return this.fail('DATA_AFTER_CLOSE', 400, 'data after Connection: close');
        pos++;
      } else {
        return pos; // upgraded
      }
      if (this.paused || this.state === S_UPGRADED) return pos;
    }
    return pos;
  }

  /** The peer ended its side. 0 when that is a clean end between messages, ERROR when mid-message. */
  finish(): number {
    if (this.state === S_ERROR) return ERROR;
    if (this.idle || this.state === S_UPGRADED) return 0;
    return this.fail('INCOMPLETE', 400, 'connection ended in the middle of a request');
  }

  // --- lines -------------------------------------------------------------------------------------

  /** Copies an incomplete line into the pending buffer. */
  private stash(chunk: Buffer, start: number, end: number): number {
    const len = end - start;
    let p = this.pending;
    if (p === null || p.length < len) {
      p = this.pending = Buffer.allocUnsafe(len < 256 ? 256 : len * 2);
    }
    chunk.copy(p, 0, start, end);
    this.pendingLen = len;
    return end;
  }

  /** Adds the next chunk's bytes to the pending line; parses the line once its LF is there. */
  private continueLine(chunk: Buffer): number {
    const state = this.state;
    const budget = state === S_CHUNK_SIZE ? this.maxChunkLineBytes : this.maxHeadBytes - this.headBytes;
    const lf = chunk.indexOf(LF);
    const take = lf < 0 ? chunk.length : lf + 1;
    const len = this.pendingLen + take;
    if (len > budget) {
      // what fits, to tell 414 from 431
      const fit = Math.max(budget - this.pendingLen, 0);
      this.append(chunk, fit);
      return this.lineTooLong(this.pending!, 0, this.pendingLen);
    }
    this.append(chunk, take);
    const p = this.pending!;
    if (lf < 0) {
      // Still no LF. Fail now rather than at the limit when a byte can be part of no line (a CTL),
      // or when a request line is past the point where its target must have ended. Each check
      // parses the pending line again, so only in cases that end it within a few bytes.
      let bad = false;
      for (let k = 0; k < take; k++) {
        const b = chunk[k];
        if (VALUE[b] !== 1 && b !== CR) bad = true;
      }
      if (bad || (state === S_START && this.pendingLen > this.maxUriLength + MAX_METHOD + 2)) {
        if (this.line(state, p, this.pendingLen) === ERROR) return ERROR;
      }
      return take;
    }
    this.pendingLen = 0;
    const next = this.line(state, p, len);
    if (next === INCOMPLETE) return this.fail('INTERNAL', 400, 'line parse did not end at LF');
    if (next < 0) return ERROR;
    if (recCount !== 0) this.flush(p);
    // Drop a large pending buffer once the head is done; idle connections should hold nothing big.
    if (p.length > 1024 && (this.state === S_BODY || this.state === S_CHUNK_SIZE || this.state === S_START)) {
      this.pending = null;
    }
    return take;
  }

  private line(state: number, p: Buffer, len: number): number {
    if (state === S_START) return this.requestLine(p, 0, len);
    if (state === S_HEADER) return this.headerLine(p, 0, len, false);
    if (state === S_TRAILER) return this.headerLine(p, 0, len, true);
    return this.chunkSizeLine(p, 0, len);
  }

  private append(chunk: Buffer, n: number): void {
    const need = this.pendingLen + n;
    let p = this.pending!;
    if (p.length < need) {
      const bigger = Buffer.allocUnsafe(Math.max(need * 2, 256));
      p.copy(bigger, 0, 0, this.pendingLen);
      p = this.pending = bigger;
    }
    chunk.copy(p, this.pendingLen, 0, n);
    this.pendingLen = need;
  }

  /** A line did not end within its budget. */
  private lineTooLong(buf: Buffer, start: number, end: number): number {
    const state = this.state;
    if (state === S_CHUNK_SIZE) return this.fail('CHUNK_LINE_TOO_LONG', 400, 'chunk size line too long');
    if (state === S_START) {
      // Refuse what is not a request line as such, and a long target as 414.
      // (requestLine itself answers 414 for a target past maxUriLength)
      if (this.requestLine(buf, start, end) === ERROR) return ERROR;
    }
    return this.fail('HEAD_TOO_LARGE', 431, state === S_TRAILER ? 'trailers too large' : 'head too large');
  }

  /** request-line = method SP request-target SP HTTP-version CRLF (or an empty line before it). */
  private requestLine(buf: Buffer, start: number, end: number): number {
    let i = start;
    let c = buf[i];
    if (c === CR) {
      // RFC 9112 §2.2: at least one empty line before the request-line may be ignored.
      if (i + 1 >= end) return INCOMPLETE;
      if (buf[i + 1] !== LF) return this.fail('INVALID_REQUEST_LINE', 400, 'expected LF after CR');
      this.headBytes += 2;
      return i + 2;
    }
    // method
    while (i < end && TOKEN[buf[i]] === 1) i++;
    const methodLen = i - start;
    if (methodLen > MAX_METHOD) return this.fail('INVALID_METHOD', 400, 'method too long');
    if (i >= end) return INCOMPLETE;
    if (buf[i] !== SP || methodLen === 0) {
      return this.fail('INVALID_METHOD', 400, 'invalid character in method');
    }
    // An unknown method is a 501, but only for an otherwise well-formed request line.
    const method = methodName(buf, start, methodLen);
    if (method === null && methodLen === 3 && equals(buf, start, 'PRI')) {
      return this.fail('H2_PREFACE', 400, 'HTTP/2 preface');
    }
    // request-target
    const targetStart = ++i;
    const uriEnd = targetStart + this.maxUriLength + 1;
    const scanEnd = Math.min(end, uriEnd);
    while (i < scanEnd && TARGET[buf[i]] === 1) i++;
    if (i - targetStart > this.maxUriLength) return this.fail('URI_TOO_LONG', 414, 'request-target too long');
    if (i >= end) return INCOMPLETE;
    c = buf[i];
    if (c !== SP) {
      if (c === CR || c === LF) return this.fail('INVALID_VERSION', 400, 'request line without a version');
      return this.fail('INVALID_TARGET', 400, 'invalid character in request-target');
    }
    const targetEnd = i;
    if (targetEnd === targetStart) return this.fail('INVALID_TARGET', 400, 'empty request-target');
    // HTTP-version
    i++;
    if (end - i < 10) {
      // Not all there yet: check what is, so garbage fails now rather than at the head limit.
      for (let k = 0; i + k < end; k++) {
        const b = buf[i + k];
        if (k === 5 || k === 7 ? b < 48 || b > 57 : b !== VERSION_SHAPE.charCodeAt(k)) {
          return this.fail('INVALID_VERSION', 400, 'invalid HTTP version');
        }
      }
      return INCOMPLETE;
    }
    const v = this.version(buf, i);
    if (v < 0) return v;
    if (!this.checkTarget(buf, targetStart, targetEnd, method ?? '')) return ERROR;
    if (method === null) return this.fail('UNKNOWN_METHOD', 501, 'method not implemented');
    this.method = method;
    const r = recCount++ * 4;
    rec[r] = -1;
    rec[r + 2] = targetStart;
    rec[r + 3] = targetEnd;
    this.state = S_HEADER;
    this.headBytes += v - start;
    return v;
  }

  /** "HTTP/" DIGIT "." DIGIT CRLF at i; sets versionMinor and returns the index after the LF. */
  private version(buf: Buffer, i: number): number {
    if (!equals(buf, i, 'HTTP/')) return this.fail('INVALID_VERSION', 400, 'invalid HTTP version');
    const major = buf[i + 5] - 48;
    const minor = buf[i + 7] - 48;
    if (!(major >= 0 && major <= 9) || buf[i + 6] !== 46 || !(minor >= 0 && minor <= 9)) {
      return this.fail('INVALID_VERSION', 400, 'invalid HTTP version');
    }
    if (buf[i + 8] !== CR || buf[i + 9] !== LF) {
      return this.fail('INVALID_VERSION', 400, 'expected CRLF after the HTTP version');
    }
    if (major !== 1 || minor > 1) return this.fail('UNSUPPORTED_VERSION', 505, 'HTTP version not supported');
    this.versionMinor = minor;
    return i + 10;
  }

  /** The request-target's form must fit the method (RFC 9112 §3.2). */
  private checkTarget(buf: Buffer, start: number, end: number, method: string): boolean {
    const c = buf[start];
    const connect = method === 'CONNECT';
    if (c === 47) {
      // origin-form
      if (!connect) return true;
    } else if (c === 42) {
      // asterisk-form
      if (end - start === 1 && method === 'OPTIONS') return true;
    } else if (connect) {
      // authority-form: host ":" port
      let colon = -1;
      for (let i = start; i < end; i++) {
        const b = buf[i];
        if (AUTHORITY[b] !== 1) return this.fail('INVALID_TARGET', 400, 'invalid CONNECT target') === 0;
        if (b === COLON) colon = i;
      }
      const port = end - colon - 1;
      if (colon > start && port >= 1 && port <= 5) {
        let ok = true;
        for (let i = colon + 1; i < end; i++) if (buf[i] < 48 || buf[i] > 57) ok = false;
        if (ok) return true;
      }
    } else if (
      end - start > 7 &&
      (equalsLower(buf, start, 'http://') || equalsLower(buf, start, 'https://'))
    ) {
      // absolute-form: http(s)://authority[path-abempty][?query], without userinfo
      const authStart = start + (buf[start + 4] === COLON ? 7 : 8);
      let i = authStart;
      while (i < end && AUTHORITY[buf[i]] === 1) i++;
      if (i > authStart && (i === end || buf[i] === 47 || buf[i] === 63)) return true;
    }
    return this.fail('INVALID_TARGET', 400, 'request-target does not fit the method') === 0;
  }

  /** A header (or trailer) field line, or the empty line that ends the section. */
  private headerLine(buf: Buffer, start: number, end: number, trailer: boolean): number {
    let i = start;
    let c = buf[i];
    if (c === CR) {
      if (i + 1 >= end) return INCOMPLETE;
      if (buf[i + 1] !== LF) return this.fail('INVALID_HEADER', 400, 'expected LF after CR');
      return trailer ? this.trailersDone(buf, i + 2) : this.headDone(buf, i + 2);
    }
    // field-name
    while (i < end && TOKEN[buf[i]] === 1) i++;
    if (i >= end) return INCOMPLETE;
    c = buf[i];
    const nameEnd = i;
    if (c !== COLON || nameEnd === start) {
      if (nameEnd === start && (c === SP || c === HTAB)) {
        return this.fail('OBS_FOLD', 400, 'line folding or whitespace before a field name');
      }
      if (c === SP || c === HTAB) return this.fail('INVALID_HEADER', 400, 'whitespace before the colon');
      if (c === LF) return this.fail('BARE_LF', 400, 'LF without CR');
      return this.fail('INVALID_HEADER', 400, 'invalid character in field name');
    }
    i++;
    while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
    const valueStart = i;
    while (i < end && VALUE[buf[i]] === 1) i++;
    if (i >= end) return INCOMPLETE;
    if (buf[i] !== CR) {
      if (buf[i] === LF) return this.fail('BARE_LF', 400, 'LF without CR');
      return this.fail('INVALID_HEADER', 400, 'invalid character in field value');
    }
    if (i + 1 >= end) return INCOMPLETE;
    if (buf[i + 1] !== LF) return this.fail('INVALID_HEADER', 400, 'CR without LF in a field');
    let valueEnd = i;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    this.headBytes += i + 2 - start;
    if (++this.headerCount > this.maxHeaderCount) {
      return this.fail(
        'TOO_MANY_HEADERS',
        431,
        trailer ? 'too many trailer fields' : 'too many header fields',
      );
    }

    const kind = headerKind(buf, start, nameEnd - start);
    if (trailer) {
      if (kind === K_CONTENT_LENGTH || kind === K_TRANSFER_ENCODING || kind === K_HOST) {
        return this.fail('INVALID_TRAILER', 400, `${latin1(buf, start, nameEnd)} in trailers`);
      }
    } else if (kind !== K_OTHER && this.special(kind, buf, valueStart, valueEnd, i) < 0) {
      return ERROR;
    }
    if (recCount === REC_MAX) this.flush(buf);
    const r = recCount++ * 4;
    rec[r] = start;
    rec[r + 1] = nameEnd;
    rec[r + 2] = valueStart;
    rec[r + 3] = valueEnd;
    return i + 2;
  }

  /** Framing and connection headers. `rawEnd` is where the value's trailing whitespace ends. */
  private special(kind: number, buf: Buffer, start: number, end: number, rawEnd: number): number {
    switch (kind) {
      case K_HOST:
        this.hostCount++;
        for (let i = start; i < end; i++) {
          if (AUTHORITY[buf[i]] !== 1) return this.fail('INVALID_HOST', 400, 'invalid Host');
        }
        return 0;
      case K_CONTENT_LENGTH: {
        if (this.hflags & H_CONTENT_LENGTH)
          return this.fail('INVALID_CONTENT_LENGTH', 400, 'duplicate Content-Length');
        const len = end - start;
        if (len === 0 || len > 15) return this.fail('INVALID_CONTENT_LENGTH', 400, 'invalid Content-Length');
        let n = 0;
        for (let i = start; i < end; i++) {
          const d = buf[i] - 48;
          if (d < 0 || d > 9) return this.fail('INVALID_CONTENT_LENGTH', 400, 'invalid Content-Length');
          n = n * 10 + d;
        }
        this.hflags |= H_CONTENT_LENGTH;
        this.contentLength = n;
        return 0;
      }
      case K_TRANSFER_ENCODING:
        return this.transferEncoding(buf, start, end, rawEnd);
      case K_CONNECTION:
        for (let i = start; i < end; ) {
          while (i < end && (buf[i] === SP || buf[i] === HTAB || buf[i] === 44)) i++;
          const s = i;
          while (i < end && buf[i] !== 44) i++;
          let e = i;
          while (e > s && (buf[e - 1] === SP || buf[e - 1] === HTAB)) e--;
          const len = e - s;
          if (len === 5 && equalsLower(buf, s, 'close')) this.hflags |= H_CONN_CLOSE;
          else if (len === 10 && equalsLower(buf, s, 'keep-alive')) this.hflags |= H_CONN_KEEP_ALIVE;
          else if (len === 7 && equalsLower(buf, s, 'upgrade')) this.hflags |= H_CONN_UPGRADE;
        }
        return 0;
      case K_UPGRADE:
        this.hflags |= H_UPGRADE;
        return 0;
      case K_EXPECT:
        if (end - start === 12 && equalsLower(buf, start, '100-continue')) this.hflags |= H_EXPECT_CONTINUE;
        else this.hflags |= H_EXPECT_OTHER;
        return 0;
    }
    return 0;
  }

  /** Transfer-Encoding = #transfer-coding; only tokens, no parameters; evaluated at the head's end. */
  private transferEncoding(buf: Buffer, start: number, end: number, rawEnd: number): number {
    this.hflags |= H_TRANSFER_ENCODING;
    if (start === end) return this.fail('INVALID_TRANSFER_ENCODING', 400, 'empty Transfer-Encoding');
    for (let i = end; i < rawEnd; i++) {
      if (buf[i] === HTAB) return this.fail('INVALID_TRANSFER_ENCODING', 400, 'HTAB after Transfer-Encoding');
    }
    let i = start;
    for (;;) {
      const s = i;
      while (i < end && TOKEN[buf[i]] === 1) i++;
      if (i === s) return this.fail('INVALID_TRANSFER_ENCODING', 400, 'invalid Transfer-Encoding');
      const chunked = i - s === 7 && equalsLower(buf, s, 'chunked');
      this.teElements++;
      if (chunked) this.teChunked++;
      this.teLastChunked = chunked;
      while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
      if (i === end) return 0;
      if (buf[i] !== 44) return this.fail('INVALID_TRANSFER_ENCODING', 400, 'invalid Transfer-Encoding');
      i++;
      while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
    }
  }

  /** The empty line after the header section: decide framing, then emit the head. */
  private headDone(buf: Buffer, next: number): number {
    if (recCount !== 0) this.flush(buf);
    const h = this.hflags;
    const minor = this.versionMinor;
    let flags = 0;
    let length = 0;
    if (h & H_TRANSFER_ENCODING) {
      if (h & H_CONTENT_LENGTH) {
        return this.fail(
          'CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
          400,
          'Content-Length with Transfer-Encoding',
        );
      }
      if (minor === 0) return this.fail('INVALID_TRANSFER_ENCODING', 400, 'Transfer-Encoding in HTTP/1.0');
      if (!this.teLastChunked || this.teChunked !== 1) {
        return this.fail('INVALID_TRANSFER_ENCODING', 400, 'chunked is not the final transfer coding');
      }
      if (this.teElements !== 1) {
        return this.fail('UNSUPPORTED_TRANSFER_ENCODING', 501, 'transfer coding not implemented');
      }
      flags = BODY_CHUNKED;
      length = -1;
    } else if (this.contentLength > 0) {
      if (this.contentLength > this.bodyLimit) return this.fail('BODY_TOO_LARGE', 413, 'body too large');
      flags = BODY_LENGTH;
      length = this.contentLength;
    }
    if (this.hostCount > 1) return this.fail('MULTIPLE_HOST', 400, 'more than one Host');
    if (this.hostCount === 0 && minor === 1 && this.requireHost)
      return this.fail('MISSING_HOST', 400, 'no Host');
    const connect = this.method === 'CONNECT';
    if (connect) {
      if (flags !== BODY_NONE) return this.fail('INVALID_CONNECT', 400, 'CONNECT with a body');
      flags |= FLAG_CONNECT;
    }
    const keepAlive =
      minor === 1 ? (h & H_CONN_CLOSE) === 0 : (h & (H_CONN_KEEP_ALIVE | H_CONN_CLOSE)) === H_CONN_KEEP_ALIVE;
    const upgrade = connect || (h & (H_UPGRADE | H_CONN_UPGRADE)) === (H_UPGRADE | H_CONN_UPGRADE);
    if (keepAlive) flags |= FLAG_KEEP_ALIVE;
    if (upgrade) flags |= FLAG_UPGRADE;
    if (minor === 1) {
      if (h & H_EXPECT_CONTINUE) flags |= FLAG_EXPECT_CONTINUE;
      if (h & H_EXPECT_OTHER) flags |= FLAG_EXPECT_OTHER;
    }
    this.keepAlive = keepAlive;
    this.upgrade = upgrade;
    const kind = flags & BODY_MASK;
    this.state = kind === BODY_CHUNKED ? S_CHUNK_SIZE : S_BODY;
    this.remaining = length;
    this.handler.onHead(this.method, this.target, minor, this.raw, flags, length);
    if (kind === BODY_NONE) return this.complete() < 0 ? ERROR : next;
    if (kind === BODY_LENGTH && length > this.bodyLimit)
      return this.fail('BODY_TOO_LARGE', 413, 'body too large');
    return next;
  }

  private trailersDone(buf: Buffer, next: number): number {
    if (recCount !== 0) this.flush(buf);
    const t = this.trailers;
    if (t !== null) this.handler.onTrailers(t);
    return this.complete() < 0 ? ERROR : next;
  }

  /** chunk-size [chunk-ext] CRLF, with chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ). */
  private chunkSizeLine(buf: Buffer, start: number, end: number): number {
    let i = start;
    let size = 0;
    while (i < end) {
      const h = HEX[buf[i]];
      if (h < 0) break;
      if (size >= MAX_SAFE_CHUNK) return this.fail('INVALID_CHUNK', 400, 'chunk size too large');
      size = size * 16 + h;
      i++;
    }
    if (i >= end) return INCOMPLETE;
    if (i === start) return this.fail('INVALID_CHUNK', 400, 'invalid chunk size');
    let c = buf[i];
    while (c === 59) {
      // ";" ext-name [ "=" ext-value ], no whitespace anywhere (as llhttp)
      const s = ++i;
      while (i < end && TOKEN[buf[i]] === 1) i++;
      if (i >= end) return INCOMPLETE;
      if (i === s) return this.fail('INVALID_CHUNK', 400, 'invalid chunk extension');
      c = buf[i];
      if (c === 61) {
        i++;
        if (i >= end) return INCOMPLETE;
        if (buf[i] === 34) {
          i++;
          for (;;) {
            if (i >= end) return INCOMPLETE;
            c = buf[i];
            if (c === 34) break;
            if (c === 92) {
              if (++i >= end) return INCOMPLETE;
              c = buf[i];
              if (c !== HTAB && (c < 32 || c === 127))
                return this.fail('INVALID_CHUNK', 400, 'invalid chunk extension');
            } else if (QDTEXT[c] !== 1) {
              return this.fail('INVALID_CHUNK', 400, 'invalid chunk extension');
            }
            i++;
          }
          i++;
        } else {
          const v = i;
          while (i < end && TOKEN[buf[i]] === 1) i++;
          if (i === v && i < end) return this.fail('INVALID_CHUNK', 400, 'invalid chunk extension');
        }
        if (i >= end) return INCOMPLETE;
        c = buf[i];
      }
    }
    if (c !== CR)
      return this.fail('INVALID_CHUNK', 400, c === LF ? 'LF without CR' : 'invalid chunk size line');
    if (i + 1 >= end) return INCOMPLETE;
    if (buf[i + 1] !== LF) return this.fail('INVALID_CHUNK', 400, 'expected LF after chunk size');
    if (size === 0) {
      this.state = S_TRAILER;
      this.headBytes = 0;
      this.headerCount = 0;
      return i + 2;
    }
    this.bodyBytes += size;
    if (this.bodyBytes > this.bodyLimit) return this.fail('BODY_TOO_LARGE', 413, 'body too large');
    this.remaining = size;
    this.state = S_CHUNK_DATA;
    return i + 2;
  }

  // --- messages ----------------------------------------------------------------------------------

  private complete(): number {
    const upgrade = this.upgrade;
    const keepAlive = this.keepAlive;
    this.state = upgrade ? S_UPGRADED : keepAlive ? S_START : S_CLOSED;
    this.startMessage();
    this.handler.onMessageComplete();
    return this.state === S_ERROR ? ERROR : 0;
  }

  /** Decodes the recorded target and fields (see `rec`) from `buf`. */
  private flush(buf: Buffer): void {
    const n = recCount;
    recCount = 0;
    const lo = rec[0] < 0 ? rec[2] : rec[0];
    const text = latin1(buf, lo, rec[n * 4 - 1]);
    let r = 0;
    if (rec[0] < 0) {
      const vs = rec[2] - lo;
      const ve = rec[3] - lo;
      this.target = ve - vs === 1 && text.charCodeAt(vs) === 47 ? '/' : text.slice(vs, ve);
      r = 4;
    }
    const trailer = this.state === S_TRAILER;
    let out = trailer ? this.trailers : this.raw;
    let k: number;
    if (out === null || out.length === 0) {
      // the usual case, all fields at once: an array of the right size
      out = new Array<string>(n * 2 - (r >> 1));
      if (trailer) this.trailers = out;
      else this.raw = out;
      k = 0;
    } else {
      k = out.length;
    }
    for (; r < n * 4; r += 4) {
      const vs = rec[r + 2] - lo;
      const ve = rec[r + 3] - lo;
      out[k++] = text.slice(rec[r] - lo, rec[r + 1] - lo);
      out[k++] = vs === ve ? '' : text.slice(vs, ve);
    }
  }

  private startMessage(): void {
    this.headBytes = 0;
    this.headerCount = 0;
    this.method = '';
    this.target = '';
    this.versionMinor = 1;
    this.raw = [];
    this.trailers = null;
    this.hflags = 0;
    this.hostCount = 0;
    this.contentLength = 0;
    this.teElements = 0;
    this.teChunked = 0;
    this.teLastChunked = false;
    this.bodyLimit = this.maxBodyBytes;
    this.bodyBytes = 0;
    this.remaining = 0;
  }

  private fail(code: string, status: number, reason: string): number {
    recCount = 0;
    this.state = S_ERROR;
    this.errorCode = code;
    this.errorStatus = status;
    this.errorReason = reason;
    this.pending = null;
    this.pendingLen = 0;
    return ERROR;
  }
}
