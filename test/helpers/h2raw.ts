// A raw HTTP/2 client for tests that must send what node:http2's client refuses to (CR/LF in a
// value, upper-case or connection-specific names, two Host fields, a body longer than its
// Content-Length): the frames are written by hand, header blocks as HPACK literals without
// indexing and without Huffman coding (RFC 7541 §6.2.2). It reports how the server answered
// stream 1: response HEADERS, RST_STREAM, GOAWAY, or the connection closing.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface RawH2Answer {
  /** What ended the exchange on stream 1. */
  kind: 'headers' | 'rst' | 'goaway' | 'closed' | 'timeout';
  /** The :status when the response HEADERS used a static-table entry (200, 204, 206, 304, 400, 404, 500), else 0. */
  status: number;
  /** RST_STREAM or GOAWAY error code. */
  code: number;
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByteFlags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByteFlags | value];
  const out = [firstByteFlags | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from(hpackInt(b.length, 7, 0)), b]);
}

/** A header block: every field a literal without indexing, with a literal name. */
export function headerBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  }
  return Buffer.concat(parts);
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/**
 * Opens a connection (TLS with ALPN h2 when `tls` is given, else h2c prior knowledge), sends the
 * fields as one HEADERS frame on stream 1 (END_STREAM unless there is a body), then the body as
 * one DATA frame, and reports the answer.
 */
export function rawH2(
  url: string,
  fields: [string, string][],
  opts: { body?: string; tls?: { ca: string; servername: string }; ms?: number } = {},
): Promise<RawH2Answer> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (a: RawH2Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(a);
    };
    const onOpen = () => {
      const hasBody = opts.body !== undefined;
      socket.write(
        Buffer.concat([
          PREFACE,
          frame(4, 0, 0, Buffer.alloc(0)),
          frame(1, 0x4 | (hasBody ? 0 : 0x1), 1, headerBlock(fields)),
          ...(hasBody ? [frame(0, 0x1, 1, Buffer.from(opts.body as string, 'latin1'))] : []),
        ]),
      );
    };
    const socket: Socket = opts.tls
      ? connectTls(
          { host, port, ca: opts.tls.ca, servername: opts.tls.servername, ALPNProtocols: ['h2'] },
          onOpen,
        )
      : connectTcp(port, host, onOpen);
    const timer = setTimeout(() => finish({ kind: 'timeout', status: 0, code: 0 }), opts.ms ?? 3000);
    let buf = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3];
        const flags = buf[4];
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 4 && (flags & 0x1) === 0) socket.write(frame(4, 0x1, 0, Buffer.alloc(0)));
        else if (type === 7) finish({ kind: 'goaway', status: 0, code: payload.readUInt32BE(4) });
        else if (type === 3 && stream === 1)
          finish({ kind: 'rst', status: 0, code: payload.readUInt32BE(0) });
        else if (type === 1 && stream === 1) {
          let i = 0;
          if (flags & 0x8) i++; // PADDED: pad length
          if (flags & 0x20) i += 5; // PRIORITY
          const first = payload[i];
          const status = (first & 0x80) !== 0 ? (STATIC_STATUS[first & 0x7f] ?? 0) : 0;
          finish({ kind: 'headers', status, code: 0 });
        }
      }
    });
    socket.on('error', () => finish({ kind: 'closed', status: 0, code: 0 }));
    socket.on('close', () => finish({ kind: 'closed', status: 0, code: 0 }));
  });
}
