// Reading the start of a request body before it goes upstream, for middlewares that must see it
// (the WAF inspects it; a mirrored request copies it). What was read is kept in ctx.body and sent
// upstream first; the rest, if any, still streams from the client with backpressure, so a large
// upload is never held whole in memory.
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from './context.ts';

/** An HTTP/2 request has a body unless its HEADERS frame ended the stream (no Content-Length needed). */
export function h2HasBody(req: IncomingMessage): boolean {
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  return stream !== undefined && stream.endAfterHeaders === false;
}

/** The request has a body: a Content-Length above 0, Transfer-Encoding, or an HTTP/2 stream still open. */
export function hasRequestBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0' && cl !== '';
  return req.headers['transfer-encoding'] !== undefined || h2HasBody(req);
}

/**
 * Reads the body until `max` bytes (or its end) into ctx.body; ctx.bodyComplete says whether that
 * was all of it. Resolves with ctx.body. Rejects when the client goes away or the body breaks.
 * Calling it again returns what was read the first time.
 */
export function peekBody(ctx: RequestContext, max: number): Promise<Buffer> {
  if (ctx.body !== null) return Promise.resolve(ctx.body);
  const req = ctx.req;
  if (req.readableEnded) {
    ctx.body = Buffer.alloc(0);
    ctx.bodyComplete = true;
    return Promise.resolve(ctx.body);
  }
  const cl = req.headers['content-length'];
  const declared = cl === undefined ? -1 : Number(cl);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const done = (complete: boolean) => {
      cleanup();
      if (!complete) req.pause();
      ctx.body = Buffer.concat(chunks, n);
      ctx.bodyComplete = complete;
      ctx.bytesIn = n;
      resolve(ctx.body);
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      // At the limit: complete when that is all the Content-Length announced ('end' follows).
      if (n >= max) done(n === declared);
    };
    const onEnd = () => done(true);
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onClose = () => {
      if (!req.readableEnded) onError(new Error('the client closed the request'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

/** The body as forward() sends it after a peek: what was read, then the rest from the client. */
export async function* peekedThenRest(
  prefix: Buffer,
  rest: AsyncIterable<Buffer> | IncomingMessage,
): AsyncIterable<Buffer> {
  if (prefix.length > 0) yield prefix;
  for await (const c of rest) yield c as Buffer;
}
