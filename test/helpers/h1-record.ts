// Runs our HTTP/1.1 request parser over a byte stream cut into pieces and records what it emitted,
// in a form two runs can be compared by (consecutive body pieces are joined).
import { ERROR, type H1Handler, type H1Limits, H1Parser } from '../../src/server/h1/parser.ts';

export type H1Event =
  | {
      type: 'head';
      method: string;
      target: string;
      versionMinor: number;
      rawHeaders: string[];
      flags: number;
      contentLength: number;
    }
  | { type: 'body'; data: string }
  | { type: 'trailers'; rawTrailers: string[] }
  | { type: 'complete' }
  | { type: 'upgraded'; rest: string }
  | { type: 'error'; code: string; status: number };

export const DEFAULT_LIMITS: H1Limits = {
  maxHeadBytes: 16 * 1024,
  maxUriLength: 8 * 1024,
  maxHeaderCount: 100,
};

class Recorder implements H1Handler {
  events: H1Event[] = [];
  onHead(
    method: string,
    target: string,
    versionMinor: number,
    rawHeaders: string[],
    flags: number,
    contentLength: number,
  ): void {
    this.events.push({ type: 'head', method, target, versionMinor, rawHeaders, flags, contentLength });
  }
  onBody(chunk: Buffer): void {
    const last = this.events.at(-1);
    const data = chunk.toString('latin1');
    if (last?.type === 'body') last.data += data;
    else this.events.push({ type: 'body', data });
  }
  onTrailers(rawTrailers: string[]): void {
    this.events.push({ type: 'trailers', rawTrailers });
  }
  onMessageComplete(): void {
    this.events.push({ type: 'complete' });
  }
}

/**
 * Feeds `pieces` in order, then signals the end of input when `end` is true. After an upgrade the
 * remaining bytes are recorded as `upgraded` (the parser stops being fed, as an engine would).
 */
export function parsePieces(pieces: Buffer[], limits: H1Limits = DEFAULT_LIMITS, end = true): H1Event[] {
  const rec = new Recorder();
  const parser = new H1Parser(rec, limits);
  let rest: Buffer[] | null = null;
  for (const piece of pieces) {
    if (rest) {
      rest.push(piece);
      continue;
    }
    const n = parser.execute(piece);
    if (n === ERROR) {
      rec.events.push({ type: 'error', code: parser.errorCode, status: parser.errorStatus });
      return rec.events;
    }
    if (n < piece.length || parser.upgraded) rest = [piece.subarray(n)];
  }
  if (rest) {
    rec.events.push({ type: 'upgraded', rest: Buffer.concat(rest).toString('latin1') });
    return rec.events;
  }
  if (end && parser.finish() === ERROR) {
    rec.events.push({ type: 'error', code: parser.errorCode, status: parser.errorStatus });
  }
  return rec.events;
}

export function parseWhole(bytes: Buffer, limits: H1Limits = DEFAULT_LIMITS, end = true): H1Event[] {
  return parsePieces([bytes], limits, end);
}

/** Cuts `bytes` at the given offsets (ascending, inside the buffer). */
export function cut(bytes: Buffer, at: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const a of at) {
    out.push(bytes.subarray(prev, a));
    prev = a;
  }
  out.push(bytes.subarray(prev));
  return out;
}
