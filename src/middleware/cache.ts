// `cache`: an RFC 9111 shared cache on the request path (docs/caching.md).
//
// In the request stage the `respond` hook looks the request up:
//   fresh hit         answered from the store through the responder before it; nothing goes upstream
//   stale, allowed    (stale-while-revalidate, max-stale) answered the same way; the request then
//                     goes on upstream once per entry, into a detached responder, to refresh it
//   stale, or no-cache  goes upstream as a conditional request (the entry's validators); a 304
//                     refreshes the entry and the client is answered from it; an error may be
//                     replaced by the stale entry (stale-if-error)
//   miss              goes upstream; with `coalesce`, only one request per key at a time: the others
//                     wait for its head and then read its body along as it arrives
// The returned filter (StoreFilter) sees the answer, Gatehouse's own error pages included, and
// stores what the rules allow while it streams to the client. Unsafe methods invalidate (§4.4).

import type { HttpCache, Inflight } from '../cache/cache.ts';
import {
  currentAge,
  type Directives,
  freshnessOf,
  isUnsafe,
  notModifiedMatches,
  parseCacheControl,
  reuse,
  type StoredHeaders,
  staleIfErrorAllows,
  storedHeaders,
  updateHeaders,
  varyKey,
  varyNames,
  whyNotStorable,
} from '../cache/policy.ts';
import type { Entry } from '../cache/store.ts';
import type { CacheConfig } from '../config/schema.ts';
import { evaluateConditionals, ifRangeMatches } from '../http/conditional.ts';
import { contentRange, multipartByteranges, parseRange, unsatisfiedRange } from '../http/range.ts';
import type { RequestContext, UpstreamRequest } from '../pipeline/context.ts';
import { removeHeader } from '../pipeline/headers.ts';
import { type OutHeaders, type Responder, ResponderFilter } from '../pipeline/responder.ts';
import type { MiddlewareKind } from './types.ts';

const STATE = Symbol('cache');

/** What the upstreamRequest hook needs from the respond hook. */
interface UpstreamState {
  /** Revalidating this entry: its validators replace the client's conditional headers. */
  revalidate: Entry | null;
}

type KeyOf = (scheme: string, host: string, path: string, query: string) => string;

function keyFunction(parts: CacheConfig['key']): KeyOf {
  const s = parts.includes('scheme');
  const h = parts.includes('host');
  const p = parts.includes('path');
  const q = parts.includes('query');
  return (scheme, host, path, query) =>
    `${s ? scheme : ''}\n${h ? host : ''}\n${p ? path : ''}\n${q ? query : ''}`;
}

/** Gatehouse's answer when a request may only be served from the cache and the cache has nothing (§5.2.1.7). */
function notCached(ctx: RequestContext, outer: Responder, name: string): void {
  const body = 'Gateway Timeout: not in the cache (only-if-cached)\n';
  outer.writeHead(504, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(body.length),
    'cache-status': `${name}; fwd=miss; detail=only-if-cached`,
    'x-request-id': ctx.id,
  });
  outer.end(ctx.req.method === 'HEAD' ? undefined : body);
  ctx.bytesOut = body.length;
}

export const cache: MiddlewareKind<CacheConfig> = {
  create(name, config, env) {
    // explain and validate build Plans too; only a running Gatehouse has caches.
    if (env.caches === null) return { name };
    const c = env.caches.acquire(name, config);
    env.onClose(() => env.caches?.release(c));
    const keyOf = keyFunction(config.key);

    const lookup = (
      ctx: RequestContext,
      outer: Responder,
      key: string,
      reqCc: Directives,
      waited: boolean,
    ): Responder | null | Promise<Responder | null> => {
      const method = ctx.req.method as string;
      const headers = ctx.req.headers;
      const e = c.store.lookup(key, (vary) => varyKey(vary, headers));
      const coalesce = c.config.coalesce;
      if (e !== undefined) {
        if (!e.complete) {
          // Being written by the request that fetched it: read along.
          c.figures.coalesced++;
          serve(c, ctx, outer, e, 'fwd=miss; collapsed');
          return null;
        }
        const now = Date.now();
        const pragma = headers.pragma !== undefined && /no-cache/i.test(String(headers.pragma));
        const d = reuse(e.fresh, reqCc, pragma, now);
        if (d === 'fresh') {
          c.figures.hits++;
          serve(c, ctx, outer, e, `hit; ttl=${Math.floor(e.fresh.lifetime - currentAge(e.fresh, now))}`);
          return null;
        }
        if (d === 'stale-ok') {
          c.figures.stale++;
          serve(c, ctx, outer, e, `hit; ttl=${Math.floor(e.fresh.lifetime - currentAge(e.fresh, now))}`);
          if (e.refreshing || method !== 'GET') return null;
          // Refresh once in the background: this request goes on upstream, answering no one.
          e.refreshing = true;
          setState(ctx, { revalidate: e });
          return new StoreFilter(new Detached(outer), c, ctx, key, reqCc, e, null, true, true);
        }
        // §5.2.1.7: only a stored response the request accepts, else 504.
        if (reqCc.has('only-if-cached')) {
          notCached(ctx, outer, c.label);
          return null;
        }
        if (coalesce && !waited && c.inflight.has(key))
          return c.wait(key).then(() => lookup(ctx, outer, key, reqCc, true));
        setState(ctx, { revalidate: e });
        const fwd = e.fresh.lifetime > currentAge(e.fresh, now) ? 'fwd=request' : 'fwd=stale';
        // A HEAD revalidates the entry (a 304 refreshes it) but its answer has no body to store.
        const lead = coalesce && method === 'GET' ? c.lead(key) : null;
        return new StoreFilter(outer, c, ctx, key, reqCc, e, lead, method === 'GET', false, fwd);
      }
      if (reqCc.has('only-if-cached')) {
        notCached(ctx, outer, c.label);
        return null;
      }
      if (coalesce && !waited && c.inflight.has(key) && method === 'GET')
        return c.wait(key).then(() => lookup(ctx, outer, key, reqCc, true));
      c.figures.misses++;
      const lead = coalesce && method === 'GET' ? c.lead(key) : null;
      return new StoreFilter(outer, c, ctx, key, reqCc, null, lead, method === 'GET', false);
    };

    return {
      name,
      respond(ctx, outer) {
        const method = ctx.req.method as string;
        if (method !== 'GET' && method !== 'HEAD') {
          c.figures.bypass++;
          return isUnsafe(method) ? new InvalidateFilter(outer, c, ctx, keyOf) : outer;
        }
        const key = keyOf(ctx.scheme, authority(ctx), ctx.path, ctx.query);
        return lookup(ctx, outer, key, parseCacheControl(ctx.req.headers['cache-control']), false);
      },
      onUpstreamRequest(ctx, ureq) {
        const st = ctx.vars?.get(STATE) as UpstreamState | undefined;
        if (st?.revalidate) conditionalFor(st.revalidate, ureq);
      },
    };
  },
};

/**
 * The target URI's authority as the key has it (RFC 9111 §2: the key is the target URI): host in
 * lower case without a trailing dot, and the port unless it is the scheme's default — so a Host
 * naming another port cannot share (and poison) the entry of the real one.
 */
function authority(ctx: RequestContext): string {
  const h = ctx.hostHeader;
  const host = ctx.host;
  if (h === '' || h.length === host.length) return host;
  const port = h.slice(h.lastIndexOf(':') + 1);
  if (!/^\d+$/.test(port) || h.endsWith(']')) return host;
  const n = Number(port);
  return (ctx.scheme === 'http' && n === 80) || (ctx.scheme === 'https' && n === 443) ? host : `${host}:${n}`;
}

function setState(ctx: RequestContext, st: UpstreamState): void {
  ctx.vars ??= new Map();
  ctx.vars.set(STATE, st);
}

/** A revalidation asks about the stored entry, whatever the client asked (§4.3.1). */
function conditionalFor(e: Entry, ureq: UpstreamRequest): void {
  const h = ureq.headers;
  for (const n of [
    'if-none-match',
    'if-modified-since',
    'if-match',
    'if-unmodified-since',
    'if-range',
    'range',
  ])
    removeHeader(h, n);
  const etag = first(e.headers.etag);
  const lm = first(e.headers['last-modified']);
  if (etag !== undefined) h.push('if-none-match', etag);
  if (lm !== undefined) h.push('if-modified-since', lm);
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** 500, 502, 503 and 504 may be replaced by a stale response (RFC 5861 §4). */
function isError(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504;
}

/** The response's header values as strings (the store keeps strings). */
function asStored(h: OutHeaders): StoredHeaders {
  const out: StoredHeaders = {};
  for (const k in h) {
    const v = h[k];
    out[k] = typeof v === 'number' ? String(v) : v;
  }
  return out;
}

/** Purge tags: Surrogate-Key (space separated) and Cache-Tag (comma separated). */
function tagsOf(h: StoredHeaders): string[] {
  const tags: string[] = [];
  const sk = first(h['surrogate-key']);
  if (sk !== undefined) for (const t of sk.split(/\s+/)) if (t !== '') tags.push(t);
  const ct = h['cache-tag'];
  if (ct !== undefined)
    for (const t of (Array.isArray(ct) ? ct.join(',') : ct).split(','))
      if (t.trim() !== '') tags.push(t.trim());
  return tags;
}

/** RFC 9211: each cache appends its member; the last is the one nearest the client. */
function withCacheStatus(prev: string | string[] | number | undefined, member: string): string {
  if (prev === undefined) return member;
  return `${Array.isArray(prev) ? prev.join(', ') : prev}, ${member}`;
}

/**
 * The answer to a request that went upstream: stored while it streams when the rules allow, a 304
 * to a revalidation turned into the refreshed entry, an error turned into a stale entry when
 * stale-if-error allows.
 *
 * Once an answer is being stored, the upstream writes into the entry only (storeOnly) and this
 * request's client reads the body along from the entry like every coalesced request: so the client
 * that started the fetch can leave without cutting off the others (the fetch goes on to the end,
 * up to maxObjectSize). Filters inside this one (compress) are told the answer closed when the
 * entry is complete, not when that client leaves.
 */
class StoreFilter extends ResponderFilter {
  readonly c: HttpCache;
  readonly ctx: RequestContext;
  readonly key: string;
  readonly reqCc: Directives;
  /** The stored entry being revalidated, or null on a miss. */
  readonly stale: Entry | null;
  lead: Inflight | null;
  /** GET: the answer may be stored. */
  readonly storable: boolean;
  /** A background refresh: nobody is waiting for this answer. */
  readonly background: boolean;
  readonly fwd: string;
  readonly requestTime = Date.now();
  entry: Entry | null = null;
  /** The client was answered from the store instead: what the upstream sends is dropped. */
  swallow = false;
  /** The upstream's body goes to the entry only; the client reads it along. */
  storeOnly = false;
  /** onClose callbacks of the filters inside this one. */
  readonly closeFns: (() => void)[] = [];
  clientGone = false;

  constructor(
    outer: Responder,
    c: HttpCache,
    ctx: RequestContext,
    key: string,
    reqCc: Directives,
    stale: Entry | null,
    lead: Inflight | null,
    storable: boolean,
    background: boolean,
    fwd = 'fwd=miss',
  ) {
    super(outer);
    this.c = c;
    this.ctx = ctx;
    this.key = key;
    this.reqCc = reqCc;
    this.stale = stale;
    this.lead = lead;
    this.storable = storable;
    this.background = background;
    this.fwd = fwd;
    outer.onClose(() => this.closed());
  }

  /** Concurrent misses stop waiting: the entry (if any) is in the index now. */
  settle(): void {
    if (this.lead !== null) {
      this.lead.resolve();
      this.lead = null;
    }
  }

  /** The client's side closed (its answer is done, or it left). */
  closed(): void {
    this.clientGone = true;
    this.settle();
    const e = this.entry;
    if (this.storeOnly && e !== null && !e.complete && !e.failed) return; // the fetch goes on; see fetchDone
    if (e !== null && !e.complete) this.c.store.abandon(e);
    if (this.background && this.stale !== null) this.stale.refreshing = false;
    this.fireClose();
  }

  /** The upstream's answer is all in the entry (or the entry was given up): the inner filters' close. */
  fetchDone(): void {
    if (this.clientGone) this.fireClose();
  }

  fireClose(): void {
    for (const f of this.closeFns.splice(0)) f();
  }

  override onClose(fn: () => void): void {
    if (
      this.clientGone &&
      !(this.storeOnly && this.entry !== null && !this.entry.complete && !this.entry.failed)
    )
      fn();
    else this.closeFns.push(fn);
  }

  override get destroyed(): boolean {
    return this.storeOnly ? this.entry === null || this.entry.failed : this.outer.destroyed;
  }

  override destroy(): void {
    // The upstream broke off: the entry is given up (its readers, this client among them, are cut).
    if (this.storeOnly && this.entry !== null) {
      this.c.store.abandon(this.entry);
      this.fetchDone();
      return;
    }
    this.outer.destroy();
  }

  override writeHead(status: number, headers: OutHeaders, close?: boolean): void {
    if (this.swallow || this.outer.headersSent) return;
    const c = this.c;
    const ctx = this.ctx;
    const stale = this.stale;
    const now = Date.now();
    const h = asStored(headers);
    if (stale !== null) {
      if (status === 304 && notModifiedMatches(stale.headers, h)) {
        // §4.3.4: the 304 refreshes the stored head, and the client is answered from the entry.
        const merged = updateHeaders(stale.headers, h, c.policy);
        c.store.update(stale, merged, freshnessOf(stale.status, merged, this.requestTime, now, c.policy));
        c.figures.revalidated++;
        stale.refreshing = false;
        this.settle();
        this.swallow = true;
        // A Set-Cookie on the 304 answers this client's revalidation: it gets it, the entry does not.
        const cookie = h['set-cookie'];
        if (!this.background)
          serve(
            c,
            ctx,
            this.outer,
            stale,
            `${this.fwd}; fwd-status=304`,
            cookie === undefined ? undefined : { 'set-cookie': cookie },
          );
        else this.outer.end();
        return;
      }
      if (isError(status) && (this.background || staleIfErrorAllows(stale.fresh, this.reqCc, now))) {
        stale.refreshing = false;
        this.settle();
        this.swallow = true;
        if (!this.background) {
          c.figures.stale++;
          serve(c, ctx, this.outer, stale, `${this.fwd}; fwd-status=${status}; detail=stale-if-error`);
        } else this.outer.end();
        return;
      }
    }
    let member = stale === null ? this.fwd : `${this.fwd}; fwd-status=${status}`;
    // A revalidation answered with a new representation counts as a miss.
    if (stale !== null && !this.background) c.figures.misses++;
    if (this.storable) {
      const why = this.reqCc.has('no-store')
        ? 'request-no-store'
        : whyNotStorable('GET', ctx.req.headers, status, h, c.policy);
      const cl = Number(first(h['content-length']) ?? -1);
      if (why === null && cl <= c.store.maxObjectSize) {
        const vary = varyNames(h.vary) as string[];
        const tags = tagsOf(h);
        const stored = storedHeaders(h, c.policy);
        delete stored['surrogate-key'];
        delete stored['cache-tag'];
        delete stored['cache-status'];
        this.entry = c.store.begin(
          this.key,
          varyKey(vary, ctx.req.headers),
          `${ctx.scheme}://${authority(ctx)}${ctx.path}${ctx.query}`,
          vary,
          status,
          stored,
          freshnessOf(status, h, this.requestTime, now, c.policy),
          tags,
          cl,
        );
        if (this.entry !== null) {
          c.figures.stored++;
          member += '; stored';
        } else member += '; detail=no-room';
      } else member += `; detail=${why ?? 'too-large'}`;
    }
    if (stale !== null && this.entry === null && status === 200) {
      // A new representation that is not stored replaces nothing: the old one is outdated.
      c.store.drop(stale, false);
    }
    this.settle();
    if (this.background) {
      this.outer.writeHead(status, headers, close);
      return;
    }
    const out: OutHeaders = { ...headers };
    delete out['surrogate-key'];
    delete out['cache-tag'];
    out['cache-status'] = withCacheStatus(headers['cache-status'], `${c.label}; ${member}`);
    this.outer.writeHead(status, out, close);
    const e = this.entry;
    // With a Content-Length the whole body's room is kept at once, so the entry cannot be given up
    // for want of room half-way: then this client can safely read along too. (Without one the
    // client reads the upstream directly, as the entry may yet grow past maxObjectSize.)
    if (e !== null && e.reserved > 0 && status !== 204 && status !== 304) {
      this.storeOnly = true;
      ctx.keepUpstream = true;
      readAlong(c, ctx, this.outer, e);
    }
  }

  override write(chunk: Buffer): boolean {
    if (this.swallow) return true;
    if (this.storeOnly) {
      const e = this.entry as Entry;
      if (!this.c.store.append(e, chunk)) this.fetchDone();
      return true;
    }
    if (this.entry !== null) this.c.store.append(this.entry, chunk);
    return this.outer.write(chunk);
  }

  override end(chunk?: Buffer | string): void {
    if (this.swallow) return;
    const e = this.entry;
    if (e !== null) {
      if (chunk !== undefined && chunk.length > 0)
        this.c.store.append(e, typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      this.c.store.complete(e);
    }
    // storeOnly: the client's answer ends when readAlong reaches the end of the entry.
    if (this.storeOnly) this.fetchDone();
    else this.outer.end(chunk);
  }

  override trailers(t: Record<string, string>): boolean {
    // Stored answers carry no trailers, so neither does the one read along.
    if (this.swallow || this.storeOnly) return false;
    return this.outer.trailers(t);
  }
}

/**
 * Where a background refresh writes: nowhere. The client was answered already (from the stale
 * entry); the request's log line and status are the client's, so those are read through.
 */
class Detached implements Responder {
  readonly client: Responder;
  readonly http2 = false;
  #status = 0;
  ended = false;
  #onClose: (() => void)[] = [];

  constructor(client: Responder) {
    this.client = client;
  }
  get headersSent(): boolean {
    return this.#status !== 0;
  }
  get destroyed(): boolean {
    return false;
  }
  get finished(): boolean {
    return this.client.finished;
  }
  get status(): number {
    return this.client.status;
  }
  setHeader(): void {}
  writeHead(status: number): void {
    this.#status = status;
  }
  write(): boolean {
    return true;
  }
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const f of this.#onClose.splice(0)) f();
  }
  trailers(): boolean {
    return true;
  }
  onDrain(): void {}
  onClose(fn: () => void): void {
    if (this.ended) fn();
    else this.#onClose.push(fn);
  }
  onFinish(fn: () => void): void {
    this.onClose(fn);
  }
  destroy(): void {
    this.end();
  }
}

/** §4.4: a non-error answer to an unsafe method invalidates the target URI, Location and Content-Location. */
class InvalidateFilter extends ResponderFilter {
  readonly c: HttpCache;
  readonly ctx: RequestContext;
  readonly keyOf: KeyOf;

  constructor(outer: Responder, c: HttpCache, ctx: RequestContext, keyOf: KeyOf) {
    super(outer);
    this.c = c;
    this.ctx = ctx;
    this.keyOf = keyOf;
  }

  override writeHead(status: number, headers: OutHeaders, close?: boolean): void {
    const ctx = this.ctx;
    if (status >= 200 && status < 400) {
      this.c.invalidate(this.keyOf(ctx.scheme, authority(ctx), ctx.path, ctx.query));
      for (const f of ['location', 'content-location']) {
        const v = headers[f];
        if (typeof v !== 'string') continue;
        try {
          const base = `${ctx.scheme}://${ctx.hostHeader || ctx.host}${ctx.path}`;
          const u = new URL(v, base);
          // Same origin only: another site's entries are not this request's to remove.
          if (u.protocol === `${ctx.scheme}:` && u.host.toLowerCase() === new URL(base).host)
            this.c.invalidate(this.keyOf(ctx.scheme, u.host.toLowerCase(), u.pathname, u.search));
        } catch {
          // Not a URL: nothing to invalidate.
        }
      }
    }
    this.outer.writeHead(status, headers, close);
  }
}

// ---------------------------------------------------------------- answering from the store

/** The fields a 304 carries (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = [
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'vary',
  'last-modified',
];

/**
 * Answers from an entry: the client's own conditional request (304 / 412), a Range (206, multipart,
 * 416) from a complete 200, HEAD without a body, or the whole response. Age and Cache-Status on
 * every answer.
 */
function serve(
  c: HttpCache,
  ctx: RequestContext,
  outer: Responder,
  e: Entry,
  member: string,
  extra?: OutHeaders,
): void {
  const req = ctx.req;
  const method = req.method as string;
  const head = method === 'HEAD';
  const base: OutHeaders = {};
  const now = Date.now();
  const age = String(Math.floor(currentAge(e.fresh, now)));
  const cacheStatus = `${c.label}; ${member}`;
  if (e.complete) {
    // §4.3.2: a cache evaluates If-None-Match and If-Modified-Since only; If-Match and
    // If-Unmodified-Since are the origin's to answer.
    const asked = {
      'if-none-match': req.headers['if-none-match'],
      'if-modified-since': req.headers['if-modified-since'],
    };
    const cond = evaluateConditionals(method, asked, {
      etag: first(e.headers.etag),
      lastModified: first(e.headers['last-modified']),
    });
    if (cond !== 'proceed') {
      if (cond === 304)
        for (const f of NOT_MODIFIED_FIELDS) if (e.headers[f] !== undefined) base[f] = e.headers[f];
      base.age = age;
      base['cache-status'] = cacheStatus;
      base['x-request-id'] = ctx.id;
      if (extra !== undefined) Object.assign(base, extra);
      if (cond === 412) base['content-length'] = '0';
      outer.writeHead(cond, base);
      outer.end();
      return;
    }
  }
  const h: OutHeaders = { ...e.headers, ...extra, age, 'cache-status': cacheStatus, 'x-request-id': ctx.id };
  // A complete body's length is known: say it (the origin may have sent it chunked).
  if (e.complete && h['content-length'] === undefined && e.status !== 204 && e.status !== 304)
    h['content-length'] = String(e.size);
  const range = req.headers.range;
  if (e.complete && e.status === 200 && range !== undefined && !head) {
    const ifRange = first(req.headers['if-range']);
    const validators = { etag: first(e.headers.etag), lastModified: first(e.headers['last-modified']) };
    if (ifRange === undefined || ifRangeMatches(ifRange, validators, first(e.headers.date))) {
      const r = parseRange(range, e.size);
      if (r.kind === 'unsatisfiable') {
        delete h['content-length'];
        h['content-range'] = unsatisfiedRange(e.size);
        h['content-length'] = '0';
        outer.writeHead(416, h);
        outer.end();
        return;
      }
      if (r.kind === 'ranges') return serveRanges(c, ctx, outer, e, h, r.ranges);
    }
  }
  outer.writeHead(e.status, h);
  if (head || e.status === 204 || e.status === 304) {
    outer.end();
    return;
  }
  if (!e.complete) return readAlong(c, ctx, outer, e);
  send(c, ctx, outer, e, 0, e.size - 1, true);
}

function serveRanges(
  c: HttpCache,
  ctx: RequestContext,
  outer: Responder,
  e: Entry,
  h: OutHeaders,
  ranges: readonly { start: number; end: number }[],
): void {
  if (ranges.length === 1) {
    const { start, end } = ranges[0];
    h['content-range'] = contentRange(start, end, e.size);
    h['content-length'] = String(end - start + 1);
    outer.writeHead(206, h);
    send(c, ctx, outer, e, start, end, true);
    return;
  }
  const ct = first(e.headers['content-type']);
  const mp = multipartByteranges(ranges, e.size, ct);
  h['content-type'] = mp.contentType;
  h['content-length'] = String(mp.length);
  outer.writeHead(206, h);
  // Parts one after another, each waiting for the one before to be written.
  let i = 0;
  const next = (): void => {
    if (outer.destroyed) return;
    if (i === mp.parts.length) {
      outer.end(mp.tail);
      ctx.bytesOut = mp.length;
      return;
    }
    const p = mp.parts[i++];
    outer.write(p.head);
    send(c, ctx, outer, e, p.start, p.end, false, next);
  };
  next();
}

/** Bytes start..end of a complete entry; `last`: the response ends after them, else `then` runs. */
function send(
  _c: HttpCache,
  ctx: RequestContext,
  outer: Responder,
  e: Entry,
  start: number,
  end: number,
  last: boolean,
  then?: () => void,
): void {
  const body = _c.store.body(e, start, end);
  if (Buffer.isBuffer(body)) {
    ctx.bytesOut += body.length;
    if (last) outer.end(body);
    else if (outer.write(body)) then?.();
    else outer.onDrain(() => then?.());
    return;
  }
  const rs = body;
  let done = false;
  outer.onClose(() => {
    if (!done) rs.destroy();
  });
  rs.on('data', (b: Buffer) => {
    ctx.bytesOut += b.length;
    if (!outer.write(b)) {
      rs.pause();
      outer.onDrain(() => rs.resume());
    }
  });
  rs.on('end', () => {
    done = true;
    if (last) outer.end();
    else then?.();
  });
  rs.on('error', () => {
    done = true;
    outer.destroy();
  });
}

/** Streams an entry still being written, chunk by chunk as they arrive, with backpressure. */
function readAlong(c: HttpCache, ctx: RequestContext, outer: Responder, e: Entry): void {
  let pos = 0;
  let arr: Buffer[] | null = null;
  let idx = 0;
  let base = 0;
  let draining = false;
  let stopped = false;
  const stop = () => {
    stopped = true;
    e.readers?.delete(pump);
  };
  const pump = (): void => {
    if (stopped || draining) return;
    for (;;) {
      if (outer.destroyed) return stop();
      if (e.failed) {
        stop();
        outer.destroy();
        return;
      }
      const chunks = e.chunks;
      if (chunks === null) {
        // Moved to its file: the rest from there.
        stop();
        if (pos >= e.size) outer.end();
        else send(c, ctx, outer, e, pos, e.size - 1, true);
        return;
      }
      if (chunks !== arr) {
        arr = chunks;
        idx = 0;
        base = 0;
        while (idx < arr.length && base + arr[idx].length <= pos) base += arr[idx++].length;
      }
      if (idx < arr.length) {
        const b = arr[idx++];
        const piece = pos > base ? b.subarray(pos - base) : b;
        base += b.length;
        pos += piece.length;
        ctx.bytesOut += piece.length;
        if (!outer.write(piece)) {
          draining = true;
          outer.onDrain(() => {
            draining = false;
            pump();
          });
          return;
        }
        continue;
      }
      if (e.complete) {
        stop();
        outer.end();
        return;
      }
      e.readers ??= new Set();
      e.readers.add(pump);
      return;
    }
  };
  outer.onClose(stop);
  pump();
}
