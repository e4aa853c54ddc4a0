// Static files for `static` routes (docs/static.md).
//
// compileStatic resolves the root once (realpath, when the Plan is compiled); serve() answers one
// request through ctx.res, so the body middlewares in front of it (compress, cache) apply, as they
// do to an upstream's answer. Per request:
//
//   1. GET and HEAD only (405 with Allow).
//   2. The path (after stripPrefix and rewrite, already normalised by pipeline/path.ts) is split into
//      segments; each is percent-decoded once, as UTF-8 (malformed: 400). A decoded segment holding
//      `/`, `\`, NUL or another control character, or equal to `.` or `..`, names no file (404); a
//      segment starting with `.` is a dotfile (404 unless `dotfiles`, `.well-known` always served).
//   3. The segments are joined under the root and the result realpath'd: anything not inside the
//      real root (a symlink pointing out) is 404, and so is a real path with a dotfile segment in it
//      (a symlink to `.git`). The real path is opened with O_NOFOLLOW (a symlink swapped in after
//      the realpath fails), and O_NONBLOCK (a FIFO never blocks a thread). On Linux, the path of
//      the open descriptor (/proc/self/fd) must still be that real path: a directory swapped for a
//      symlink between the realpath and the open is caught here. From then on everything is read
//      through that descriptor (fstat, reads), so no later change of the tree can redirect it.
//   4. A directory: without a trailing slash, 301 to the path with one; with one, the index file
//      (never a listing). Not a regular file (device, FIFO, socket): 404.
//   5. Missing, and `spaFallback`, and the last segment has no extension: the root's index file.
//   6. `precompressed`: the best of file.zst / file.br / file.gz that exists (and is not older than
//      the file) by the client's Accept-Encoding; its bytes, validators and Content-Encoding, the
//      file's Content-Type.
//   7. Preconditions (RFC 9110 §13.2.2) → 304 / 412; then Range (GET only, If-Range) → 206, a
//      multipart 206, or 416.
//   8. Bodies up to 64 KiB are read whole and sent with end(buffer), head and body in one write;
//      larger ones stream from the descriptor (256 KiB reads), pausing while the client's responder
//      is full, stopped when the client goes away. The descriptor is closed on every path.
//
// Errors: EACCES/EPERM 403; ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG 404; anything else 500. Answers
// never carry a filesystem path or an error's text.
import {
  close,
  constants,
  existsSync,
  fstat,
  open,
  read,
  readlink,
  realpath,
  realpathSync,
  type Stats,
  statSync,
} from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { contentType as mimeContentType } from 'mime-types';
import type { StaticConfig } from '../config/schema.ts';
import { negotiate } from '../http/acceptEncoding.ts';
import { evaluateConditionals, ifRangeMatches, type Validators } from '../http/conditional.ts';
import {
  type ByteRange,
  contentRange,
  multipartByteranges,
  parseRange,
  unsatisfiedRange,
} from '../http/range.ts';
import { fail, respondLocal, responseHooks } from '../pipeline/answer.ts';
import type { RequestContext, ResponseHead } from '../pipeline/context.ts';
import type { Reason } from '../pipeline/errors.ts';
import type { Responder } from '../pipeline/responder.ts';
import type { Runtime } from '../pipeline/runtime.ts';

export interface StaticHandler {
  /**
   * Answers the request from the files under root, through ctx.res (so body middlewares such as
   * compress and cache apply). `path` is the request path after the route's stripPrefix and
   * rewrite (already normalised by pipeline/path.ts: dot segments resolved, %2F refused).
   */
  serve(rt: Runtime, ctx: RequestContext, path: string): void;
}

/** Bodies up to this are read whole and sent in one write. */
export const SMALL_BODY = 64 * 1024;
/** The read size when streaming. */
const CHUNK = 256 * 1024;

/** Precompressed siblings, in the server's order of preference on equal q. */
const CODINGS = ['zstd', 'br', 'gzip'] as const;
const SUFFIX: Record<(typeof CODINGS)[number], string> = { zstd: '.zst', br: '.br', gzip: '.gz' };

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
/** The path of an open descriptor can be read back (Linux). */
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');

const ALLOW = { allow: 'GET, HEAD' };

/** Checks and resolves the config once, when the Plan is compiled; throws `<where>.root: reason`. */
export function compileStatic(cfg: StaticConfig, where: string): StaticHandler {
  const abs = resolvePath(cfg.root);
  let root: string;
  try {
    root = realpathSync.native(abs);
  } catch (err) {
    throw new Error(`${where}.root: ${describe(err)}: ${abs}`);
  }
  let st: Stats;
  try {
    st = statSync(root);
  } catch (err) {
    throw new Error(`${where}.root: ${describe(err)}: ${abs}`);
  }
  if (!st.isDirectory()) throw new Error(`${where}.root: not a directory: ${abs}`);
  const index = cfg.index;
  if (index !== false) {
    if (index === '.' || index === '..' || /[/\\\x00-\x1f\x7f]/.test(index))
      throw new Error(`${where}.index: a file name, without a path`);
    if (isDotName(index) && !cfg.dotfiles)
      throw new Error(`${where}.index: ${index} is a dotfile, never served without dotfiles: true`);
  }
  return new StaticFiles(root, cfg);
}

function describe(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such directory';
    case 'ENOTDIR':
      return 'not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ELOOP':
      return 'too many symbolic links';
    default:
      return `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

/** A name that is a dotfile: starts with `.`, except `.well-known` (RFC 8615), always served. */
function isDotName(name: string): boolean {
  return name.charCodeAt(0) === 0x2e && name !== '.well-known';
}

/** What a path under the root turned out to be. */
type Found =
  | { kind: 'file'; fd: number; st: Stats; real: string }
  | { kind: 'dir'; real: string }
  /** Nothing there (ENOENT, ENOTDIR): the SPA fallback may answer. */
  | { kind: 'missing' }
  /** Refused or unusable: 404, 403 or 500, never a fallback. */
  | { kind: 'refused'; reason: Reason };

const NOT_FOUND: Found = { kind: 'refused', reason: 'file_not_found' };
const MISSING: Found = { kind: 'missing' };

/** The decoded segments of a request path, or the reason it names no file. */
type Mapped = { segs: string[]; last: string } | { reason: Reason };

const utf8 = new TextDecoder('utf-8', { fatal: true });

class StaticFiles implements StaticHandler {
  readonly root: string;
  /** The root with a trailing slash: every served path starts with it. */
  readonly prefix: string;
  readonly index: string | false;
  readonly spaIndex: string;
  readonly precompressed: boolean;
  readonly spaFallback: boolean;
  readonly dotfiles: boolean;
  readonly cacheControl: string | undefined;
  readonly #types = new Map<string, string>();

  constructor(root: string, cfg: StaticConfig) {
    this.root = root;
    this.prefix = root.endsWith('/') ? root : `${root}/`;
    this.index = cfg.index;
    this.spaIndex = cfg.index === false ? 'index.html' : cfg.index;
    this.precompressed = cfg.precompressed;
    this.spaFallback = cfg.spaFallback;
    this.dotfiles = cfg.dotfiles;
    this.cacheControl = cfg.maxAge === undefined ? undefined : `max-age=${Math.floor(cfg.maxAge / 1000)}`;
  }

  serve(rt: Runtime, ctx: RequestContext, path: string): void {
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD')
      return respondLocal(rt, ctx, { status: 405, headers: ALLOW, reason: 'method_not_allowed' });
    this.#serve(rt, ctx, path).catch(() => fail(rt, ctx, 'internal', true));
  }

  async #serve(rt: Runtime, ctx: RequestContext, path: string): Promise<void> {
    const mapped = this.map(path);
    if ('reason' in mapped) return fail(rt, ctx, mapped.reason, false);
    const { segs, last } = mapped;
    let name = segs.length === 0 ? '' : segs[segs.length - 1];
    let found = await this.#find(this.prefix + segs.join('/'));
    if (found.kind === 'file' && last === '') {
      // `/file.txt/`: a file is no directory (ENOTDIR, as open(2) would say).
      release(found);
      found = MISSING;
    }
    if (ctx.res.destroyed) return release(found);
    if (found.kind === 'dir') {
      // Without an index file a directory is nothing to redirect to.
      if (this.index === false) return fail(rt, ctx, 'file_not_found', false);
      // The client's own path decides: a rewrite that adds or drops the slash must not loop.
      if (!ctx.path.endsWith('/'))
        return this.#redirect(ctx, `/${ctx.path.replace(/^\/+/, '')}/${ctx.query}`);
      name = this.index;
      found = await this.#find(`${slash(found.real)}${this.index}`);
      if (found.kind === 'dir' || found.kind === 'missing') {
        release(found);
        return fail(rt, ctx, 'file_not_found', false);
      }
    } else if (found.kind === 'missing' && this.spaFallback && !hasExtension(last)) {
      name = this.spaIndex;
      found = await this.#find(this.prefix + this.spaIndex);
      if (found.kind === 'dir' || found.kind === 'missing') {
        release(found);
        return fail(rt, ctx, 'file_not_found', false);
      }
    }
    if (found.kind !== 'file')
      return fail(rt, ctx, found.kind === 'missing' ? 'file_not_found' : found.reason, false);
    if (ctx.res.destroyed) return release(found);

    let file = found;
    let coding: string | null = null;
    if (this.precompressed) {
      const accept = ctx.req.headers['accept-encoding'];
      let offered: string[] = CODINGS.slice();
      while (offered.length > 0) {
        const c = negotiate(accept, offered);
        if (c === null) break;
        const sib = await this.#find(found.real + SUFFIX[c as (typeof CODINGS)[number]]);
        // A sibling older than the file is stale (the file changed since it was compressed).
        if (sib.kind === 'file' && sib.st.mtimeMs >= found.st.mtimeMs) {
          file = sib;
          coding = c;
          break;
        }
        release(sib);
        offered = offered.filter((x) => x !== c);
      }
      if (file !== found) closeFd(found.fd);
    }
    try {
      if (ctx.res.destroyed) return;
      await this.#send(rt, ctx, file, this.typeOf(name), coding);
    } finally {
      closeFd(file.fd);
    }
  }

  /** The request path's decoded segments; the last one is '' for a path ending in `/`. */
  map(path: string): Mapped {
    const parts = path.split('/');
    const segs: string[] = [];
    let last = '';
    // parts[0] is what comes before the leading slash: '' (or a rewrite's output without one).
    for (let i = 0; i < parts.length; i++) {
      const raw = parts[i];
      last = raw;
      if (raw === '') continue;
      const seg = decodeSegment(raw);
      if (seg === undefined) return { reason: 'bad_request' };
      if (seg === '.' || seg === '..' || /[/\\\x00-\x1f\x7f]/.test(seg)) return { reason: 'file_not_found' };
      if (!this.dotfiles && isDotName(seg)) return { reason: 'file_not_found' };
      segs.push(seg);
      last = seg;
    }
    return { segs, last };
  }

  /** Content-Type by the name's extension, from mime-types; text types with charset=utf-8. */
  typeOf(name: string): string {
    const dot = name.lastIndexOf('.');
    const ext = dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
    let t = this.#types.get(ext);
    if (t === undefined) {
      t = (ext !== '' && mimeContentType(ext)) || 'application/octet-stream';
      if (this.#types.size < 1024) this.#types.set(ext, t);
    }
    return t;
  }

  /** Resolves, checks and opens a path under the root (see the top of this file, step 3). */
  async #find(full: string): Promise<Found> {
    let real: string;
    try {
      real = await realpathAsync(full);
    } catch (err) {
      return fromError(err);
    }
    if (real !== this.root && !real.startsWith(this.prefix)) return NOT_FOUND;
    if (!this.dotfiles && real !== this.root && hasDotSegment(real.slice(this.prefix.length)))
      return NOT_FOUND;
    let fd: number;
    try {
      fd = await openAsync(real, OPEN_FLAGS);
    } catch (err) {
      return fromError(err);
    }
    try {
      // Both at once: one wait instead of two.
      const [st, opened] = await Promise.all([
        fstatAsync(fd),
        PROC_FD ? readlinkAsync(`/proc/self/fd/${fd}`) : real,
      ]);
      if (opened !== real) {
        closeFd(fd);
        return NOT_FOUND;
      }
      if (st.isDirectory()) {
        closeFd(fd);
        return { kind: 'dir', real };
      }
      if (!st.isFile()) {
        closeFd(fd);
        return NOT_FOUND;
      }
      return { kind: 'file', fd, st, real };
    } catch (err) {
      closeFd(fd);
      return fromError(err);
    }
  }

  #redirect(ctx: RequestContext, location: string): void {
    const head: ResponseHead = {
      status: 301,
      headers: { location, 'content-length': '0', 'x-request-id': ctx.id },
    };
    responseHooks(ctx, head);
    ctx.bytesOut = 0;
    ctx.res.writeHead(head.status, head.headers);
    ctx.res.end();
  }

  async #send(
    rt: Runtime,
    ctx: RequestContext,
    file: { fd: number; st: Stats },
    type: string,
    coding: string | null,
  ): Promise<void> {
    const { fd, st } = file;
    const size = st.size;
    const req = ctx.req;
    const method = req.method as 'GET' | 'HEAD';
    const mtime = Math.floor(st.mtimeMs);
    const v: Validators = {
      etag: `"${mtime.toString(16)}-${size.toString(16)}"`,
      lastModified: new Date(mtime - (((mtime % 1000) + 1000) % 1000)).toUTCString(),
    };
    const meta: Record<string, string> = {
      etag: v.etag as string,
      'last-modified': v.lastModified as string,
    };
    if (this.cacheControl !== undefined) meta['cache-control'] = this.cacheControl;
    if (this.precompressed) meta.vary = 'Accept-Encoding';

    const cond = evaluateConditionals(method, req.headers, v);
    if (cond === 304) return this.#head(ctx, 304, { ...meta, 'x-request-id': ctx.id }, undefined);
    if (cond === 412) {
      // No reason for it in pipeline/errors.ts: an empty 412.
      return this.#head(
        ctx,
        412,
        { 'cache-control': 'no-store', 'content-length': '0', 'x-request-id': ctx.id },
        undefined,
      );
    }

    const headers: Record<string, string> = {
      'content-type': type,
      ...meta,
      'accept-ranges': 'bytes',
      'x-content-type-options': 'nosniff',
      'x-request-id': ctx.id,
    };
    if (coding !== null) headers['content-encoding'] = coding;

    let ranges: ByteRange[] | null = null;
    const rangeField = req.headers.range;
    if (method === 'GET' && rangeField !== undefined) {
      const ifRange = req.headers['if-range'];
      // Several If-Range lines are no single validator: the Range is ignored.
      if (ifRange === undefined || (typeof ifRange === 'string' && ifRangeMatches(ifRange, v))) {
        const r = parseRange(rangeField, size);
        if (r.kind === 'unsatisfiable') {
          return respondLocal(rt, ctx, {
            status: 416,
            headers: { 'content-range': unsatisfiedRange(size), 'x-content-type-options': 'nosniff' },
            reason: 'range_not_satisfiable',
          });
        }
        if (r.kind === 'ranges') ranges = r.ranges;
      }
    }

    let status = 200;
    let items: Item[];
    let length: number;
    if (ranges === null) {
      items = size === 0 ? [] : [{ start: 0, end: size - 1 }];
      length = size;
    } else if (ranges.length === 1) {
      const { start, end } = ranges[0];
      status = 206;
      headers['content-range'] = contentRange(start, end, size);
      items = [{ start, end }];
      length = end - start + 1;
    } else {
      status = 206;
      const mp = multipartByteranges(ranges, size, type);
      headers['content-type'] = mp.contentType;
      items = [];
      for (const p of mp.parts) items.push(p.head, { start: p.start, end: p.end });
      items.push(mp.tail);
      length = mp.length;
    }
    headers['content-length'] = String(length);

    if (method === 'HEAD') return this.#head(ctx, status, headers, undefined);
    if (length <= SMALL_BODY) {
      const body = await readItems(fd, items, length);
      if (body === null) return fail(rt, ctx, 'internal', false); // the file shrank under us
      if (ctx.res.destroyed) return;
      return this.#head(ctx, status, headers, body);
    }
    const head: ResponseHead = { status, headers };
    responseHooks(ctx, head);
    const res = ctx.res;
    res.writeHead(head.status, head.headers);
    const outcome = await streamItems(ctx, res, fd, items);
    if (outcome === 'done') res.end();
    else if (outcome !== 'gone') fail(rt, ctx, 'internal', true); // cuts the answer under way
  }

  /** A whole answer: head, and the body when there is one, in one write. */
  #head(
    ctx: RequestContext,
    status: number,
    headers: Record<string, string>,
    body: Buffer | undefined,
  ): void {
    const head: ResponseHead = { status, headers };
    responseHooks(ctx, head);
    // Before end(): the log stage may run inside it.
    ctx.bytesOut = body === undefined ? 0 : body.length;
    ctx.res.writeHead(head.status, head.headers);
    ctx.res.end(body);
  }
}

function slash(dir: string): string {
  return dir.endsWith('/') ? dir : `${dir}/`;
}

/** The last segment has an extension: a dot after its first character (`app.js`, not `about`). */
function hasExtension(last: string): boolean {
  return last.lastIndexOf('.') > 0;
}

function hasDotSegment(rel: string): boolean {
  for (const seg of rel.split('/')) if (isDotName(seg)) return true;
  return false;
}

/**
 * One path segment percent-decoded once, as UTF-8; undefined when malformed (a bad escape, bytes
 * that are not UTF-8, overlong forms such as %C0%AE included). Characters above U+00FF cannot come
 * from a request line; a transport that passes raw bytes passes them as latin1, read here as bytes.
 */
function decodeSegment(raw: string): string | undefined {
  let plain = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 || c > 0x7e) {
      plain = false;
      break;
    }
  }
  if (plain) return raw;
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      bytes[n++] = hi * 16 + lo;
      i += 2;
    } else if (c > 0xff) {
      return undefined;
    } else {
      bytes[n++] = c;
    }
  }
  try {
    return utf8.decode(bytes.subarray(0, n));
  } catch {
    return undefined;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

function fromError(err: unknown): Found {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return MISSING;
    case 'ELOOP':
    case 'ENAMETOOLONG':
      return NOT_FOUND;
    case 'EACCES':
    case 'EPERM':
      return { kind: 'refused', reason: 'forbidden' };
    default:
      return { kind: 'refused', reason: 'internal' };
  }
}

function release(found: Found): void {
  if (found.kind === 'file') closeFd(found.fd);
}

function closeFd(fd: number): void {
  close(fd, noop);
}

function noop(): void {}

// ---- I/O on descriptors

const realpathAsync = (p: string) =>
  new Promise<string>((ok, ko) => realpath.native(p, (e, r) => (e ? ko(e) : ok(r))));
const openAsync = (p: string, flags: number) =>
  new Promise<number>((ok, ko) => open(p, flags, (e, fd) => (e ? ko(e) : ok(fd))));
const readlinkAsync = (p: string) =>
  new Promise<string>((ok, ko) => readlink(p, (e, r) => (e ? ko(e) : ok(r))));
const fstatAsync = (fd: number) => new Promise<Stats>((ok, ko) => fstat(fd, (e, st) => (e ? ko(e) : ok(st))));
const readAsync = (fd: number, buf: Buffer, off: number, len: number, pos: number) =>
  new Promise<number>((ok, ko) => read(fd, buf, off, len, pos, (e, n) => (e ? ko(e) : ok(n))));

/** A piece of a body: bytes of our own (multipart framing), or a byte range of the file. */
type Item = Buffer | ByteRange;

/** The whole body in one buffer; null when the file is shorter than its ranges. */
async function readItems(fd: number, items: Item[], length: number): Promise<Buffer | null> {
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const item of items) {
    if (Buffer.isBuffer(item)) {
      item.copy(out, at);
      at += item.length;
      continue;
    }
    const want = item.end - item.start + 1;
    let got = 0;
    while (got < want) {
      const n = await readAsync(fd, out, at + got, want - got, item.start + got);
      if (n === 0) return null;
      got += n;
    }
    at += want;
  }
  return out;
}

/**
 * Streams the items through `res` with backpressure: one read of up to 256 KiB at a time from the
 * descriptor, into a buffer of its own (the responder may hold it), and no next read while the
 * responder is full. 'done': all written (the caller ends the answer); 'gone': the client left;
 * 'short': the file was shorter than promised; an error: a read failed. Never returns with a read
 * still running, so the caller may close the descriptor at once.
 */
async function streamItems(
  ctx: RequestContext,
  res: Responder,
  fd: number,
  items: Item[],
): Promise<'done' | 'gone' | 'short' | Error> {
  let gone = false;
  let wake: (() => void) | null = null;
  res.onClose(() => {
    if (res.finished) return;
    gone = true;
    const w = wake;
    wake = null;
    w?.();
  });
  const drained = (): Promise<void> =>
    new Promise<void>((ok) => {
      wake = ok;
      res.onDrain(() => {
        if (wake !== ok) return;
        wake = null;
        ok();
      });
    });
  for (const item of items) {
    if (gone || res.destroyed) return 'gone';
    if (Buffer.isBuffer(item)) {
      ctx.bytesOut += item.length;
      if (!res.write(item)) {
        if (gone || res.destroyed) return 'gone';
        await drained();
      }
      continue;
    }
    let pos = item.start;
    const end = item.end + 1;
    while (pos < end) {
      const want = Math.min(CHUNK, end - pos);
      const buf = Buffer.allocUnsafeSlow(want);
      let got: number;
      try {
        got = await readAsync(fd, buf, 0, want, pos);
      } catch (err) {
        return err as Error;
      }
      if (gone || res.destroyed) return 'gone';
      if (got === 0) return 'short';
      pos += got;
      ctx.bytesOut += got;
      if (!res.write(got === want ? buf : buf.subarray(0, got))) {
        if (gone || res.destroyed) return 'gone';
        await drained();
      }
    }
  }
  return gone || res.destroyed ? 'gone' : 'done';
}
