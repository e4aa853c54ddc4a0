// A request as our HTTP/1.1 engine hands it to the request path: the members of node:http's
// IncomingMessage that the pipeline reads (method, url, headers, rawHeaders, versions, socket) on a
// Readable that carries the body, with backpressure: when the pipeline stops reading, the
// connection stops parsing and stops reading its socket.
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { BodyStream } from '../body.ts';

/** What the request asks of its connection. */
export interface BodySource {
  /** The reader wants more body bytes (also: time to send 100 Continue). */
  readBody(): void;
}

/** Fields of which only the first is kept when repeated, as node:http does. */
const SINGLE = new Set([
  'host',
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/** The header object node:http builds: lower-case names; repeats joined, or the first kept. */
export function headerObject(raw: readonly string[]): IncomingHttpHeaders {
  const h: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    const prev = h[name];
    if (prev === undefined) {
      h[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      (prev as string[]).push(value);
    } else if (name === 'cookie') {
      h[name] = `${prev}; ${value}`;
    } else if (!SINGLE.has(name)) {
      h[name] = `${prev}, ${value}`;
    }
  }
  return h as IncomingHttpHeaders;
}

export class H1Request extends BodyStream {
  readonly method: string;
  readonly url: string;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly socket: Socket;
  #source: BodySource;

  constructor(
    source: BodySource,
    socket: Socket,
    method: string,
    url: string,
    minor: number,
    raw: string[],
    hasBody: boolean,
  ) {
    super();
    this.#source = source;
    this.socket = socket;
    this.method = method;
    this.url = url;
    this.httpVersionMinor = minor;
    this.httpVersion = minor === 1 ? '1.1' : '1.0';
    this.rawHeaders = raw;
    this.headers = headerObject(raw);
    if (!hasBody) {
      this.complete = true;
      this.push(null);
    }
  }

  override _read(): void {
    this.#source.readBody();
  }

  /** Body bytes from the parser; false: stop until _read asks again. */
  pushBody(chunk: Buffer): boolean {
    this.bodyTimer?.refresh();
    return this.push(chunk);
  }

  /** The body is complete. */
  endBody(): void {
    this.complete = true;
    this.clearBodyTimer();
    this.push(null);
  }
}
