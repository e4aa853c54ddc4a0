// `mirror`: sampled copies of a route's requests to another upstream, off the client's path, and the
// answers compared (docs/traffic.md, Mirroring).
//
// The request path (pipeline/run.ts) asks `wants(ctx)` once the upstream request is built: a cheap
// yes or no (the sample, room under maxInflight, a body of known length within maxBody). For a yes
// it reads the body whole (when there is one) and calls `start`, which sends the copy through a
// mirror target's pool and, with `compare`, returns a filter around the client's responder that
// notes the client's answer as it passes (status, compared headers, body hash and up to
// compare.maxBody bytes), never holding it back. When both answers are complete they are compared
// (traffic/diff.ts) and every difference is recorded with both request ids.
//
// Nothing on the copy's path touches the client's answer: the copy has its own dispatch handler,
// its own timer, and every callback of its own catches what it throws. Memory is bounded: copies
// under way by maxInflight (a copy beyond it is dropped and counted, never queued), bodies kept by
// compare.maxBody per side, and the recorded differences by a ring of compare.keep per route.
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { MirrorConfig } from '../config/schema.ts';
import { h2HasBody } from '../pipeline/body.ts';
import type { RequestContext, ResponseHead, UpstreamRequest } from '../pipeline/context.ts';
import { classifyUpstreamError, ProxyError } from '../pipeline/errors.ts';
import { type OutHeaders, type Responder, ResponderFilter } from '../pipeline/responder.ts';
import { rewriteLocation } from '../upstream/forward.ts';
import type { Target } from '../upstream/target.ts';
import type { Upstream } from '../upstream/upstream.ts';
import { type BodyCapture, type BodyMode, bodyDiff, type JsonIgnore, jsonIgnore, truncate } from './diff.ts';

/** Sent with every copy: the candidate can tell, and a copy that comes back to Gatehouse is not copied again. */
export const MIRROR_HEADER = 'x-gatehouse-mirror';
/** The copy's own request id (`<client's id>-m`); x-request-id keeps the client's. */
export const MIRROR_ID_HEADER = 'x-gatehouse-mirror-id';

export type DiffKind = 'status' | 'header' | 'body' | 'error';
/** Every kind, in the order figures list them (for /metrics). */
export const DIFF_KINDS: readonly DiffKind[] = ['status', 'header', 'body', 'error'];

/** One side of a recorded difference. */
export interface DiffSide {
  requestId: string;
  /** The status answered; 0: none (the mirror failed before its head, or the client left before one). */
  status: number;
  /** The differing value (a header's, a JSON value, the start of a body), cut to 200 characters. */
  value?: string;
}

/** One difference between the client's answer and the mirror's. */
export interface MirrorDiff {
  /** Increasing over the process's life (newest highest), across routes. */
  id: number;
  /** ISO 8601, when recorded. */
  time: string;
  route: string;
  kind: DiffKind;
  /** Method, path and query of the request: `GET /api/items?page=2`. */
  path: string;
  primary: DiffSide;
  mirror: DiffSide;
  /** `status 200 vs 500`, `header content-type`, `JSON differs at $.items[2].price`, `upstream_timeout: ...` */
  detail: string;
}

/** A route's mirror figures since the process started (kept across reloads). */
export interface MirrorFigures {
  /** Copies started (each ends as a complete answer, or failed). */
  sent: number;
  /** Sampled but not copied: maxInflight copies were already under way. */
  dropped: number;
  /** Sampled but not copyable: a body of unknown length or over maxBody, or a request that is itself a copy. */
  skipped: number;
  /** Copies without a complete answer: no available target, connect error, reset, timeout. */
  failed: number;
  /** Both answers complete and compared (compare on). */
  compared: number;
  matched: number;
  /** Compared with at least one difference (one comparison may record several). */
  differed: number;
  /** The client's own answer did not complete (the client left, the upstream cut it): not compared. */
  incomplete: number;
}

export interface MirrorRouteSnapshot {
  route: string;
  /** The mirror upstream, as last configured. */
  upstream: string;
  /** Copies under way now. */
  inflight: number;
  figures: MirrorFigures;
  /** Recorded differences by kind, since start (the list keeps only the latest `keep`). */
  countsByKind: Record<DiffKind, number>;
}

export interface MirrorSnapshot {
  routes: MirrorRouteSnapshot[];
  /** The latest differences, newest first, over all routes (or the one asked for). */
  diffs: MirrorDiff[];
}

function figures(): MirrorFigures {
  return { sent: 0, dropped: 0, skipped: 0, failed: 0, compared: 0, matched: 0, differed: 0, incomplete: 0 };
}

/** One route's figures, copies under way and latest differences (a ring of `keep`). */
export class MirrorLog {
  readonly route: string;
  upstream = '';
  readonly figures: MirrorFigures = figures();
  readonly byKind: Record<DiffKind, number> = { status: 0, header: 0, body: 0, error: 0 };
  inflight = 0;
  /** The copies under way (their aborts), so that a shutdown need not wait for them. */
  readonly copies = new Set<{ abort(reason: string): void }>();
  #ring: (MirrorDiff | undefined)[];
  /** Where the next difference goes. */
  #next = 0;
  readonly #seq: () => number;

  constructor(route: string, keep: number, seq: () => number) {
    this.route = route;
    this.#ring = new Array(keep);
    this.#seq = seq;
  }

  get keep(): number {
    return this.#ring.length;
  }

  /** A reload changed `keep`: the latest differences stay, as many as fit. */
  resize(keep: number): void {
    if (keep === this.#ring.length) return;
    const latest = this.latest(keep).reverse();
    this.#ring = new Array(keep);
    this.#next = 0;
    for (const d of latest) this.#push(d);
  }

  record(d: Omit<MirrorDiff, 'id' | 'time' | 'route'>): void {
    this.byKind[d.kind]++;
    this.#push({ id: this.#seq(), time: new Date().toISOString(), route: this.route, ...d });
  }

  #push(d: MirrorDiff): void {
    this.#ring[this.#next] = d;
    this.#next = (this.#next + 1) % this.#ring.length;
  }

  /** Newest first, at most `limit`. */
  latest(limit: number): MirrorDiff[] {
    const out: MirrorDiff[] = [];
    const n = this.#ring.length;
    for (let i = 1; i <= n && out.length < limit; i++) {
      const d = this.#ring[(this.#next - i + n) % n];
      if (d === undefined) break;
      out.push(d);
    }
    return out;
  }

  /** Ends every copy under way (each counts as failed). */
  abortAll(reason = 'shutting down'): void {
    for (const c of [...this.copies]) c.abort(reason);
  }

  snapshot(): MirrorRouteSnapshot {
    return {
      route: this.route,
      upstream: this.upstream,
      inflight: this.inflight,
      figures: { ...this.figures },
      countsByKind: { ...this.byKind },
    };
  }
}

/** The running process's mirror figures and differences, by route name (kept across reloads). */
export class MirrorRegistry {
  readonly #routes = new Map<string, MirrorLog>();
  #seq = 0;
  readonly #nextId = () => ++this.#seq;

  /** The route's log, created on first use; `keep` follows the latest config. */
  log(route: string, keep: number): MirrorLog {
    let l = this.#routes.get(route);
    if (l === undefined) {
      l = new MirrorLog(route, keep, this.#nextId);
      this.#routes.set(route, l);
    } else l.resize(keep);
    return l;
  }

  /**
   * Ends every copy under way, on every route: for a shutdown, which would otherwise wait for them
   * (the mirror targets' pools close gracefully), up to mirror.timeout.
   */
  abortAll(reason = 'shutting down'): void {
    for (const l of this.#routes.values()) l.abortAll(reason);
  }

  /** Every route's figures, and the latest `limit` differences (of `route` only, when given), newest first. */
  snapshot(limit = 100, route?: string): MirrorSnapshot {
    const routes: MirrorRouteSnapshot[] = [];
    let diffs: MirrorDiff[] = [];
    const n = Math.max(0, Math.floor(limit));
    for (const l of this.#routes.values()) {
      if (route !== undefined && l.route !== route) continue;
      routes.push(l.snapshot());
      if (n > 0) diffs = diffs.concat(l.latest(n));
    }
    diffs.sort((a, b) => b.id - a.id);
    if (diffs.length > n) diffs.length = n;
    return { routes, diffs };
  }
}

/** What compare says, compiled once per Plan. */
interface Comparing {
  /** compare.headers minus ignoreHeaders, lower case. */
  readonly headers: readonly string[];
  readonly body: BodyMode;
  readonly ignore: JsonIgnore;
  readonly maxBody: number;
}

const DEFAULT_KEEP = 200;

export class Mirror {
  readonly route: string;
  readonly config: MirrorConfig;
  readonly upstream: Upstream;
  /** This route's figures and differences: the registry's (kept across reloads), or one of its own. */
  readonly log: MirrorLog;
  readonly comparing: Comparing | null;

  constructor(route: string, config: MirrorConfig, upstream: Upstream, registry: MirrorRegistry | null) {
    this.route = route;
    this.config = config;
    this.upstream = upstream;
    const keep = config.compare?.keep ?? DEFAULT_KEEP;
    this.log = registry?.log(route, keep) ?? new MirrorLog(route, keep, counter());
    this.log.upstream = upstream.name;
    const c = config.compare;
    if (c === undefined) this.comparing = null;
    else {
      const ignored = new Set(c.ignoreHeaders.map((h) => h.toLowerCase()));
      this.comparing = {
        headers: [...new Set(c.headers.map((h) => h.toLowerCase()))].filter((h) => !ignored.has(h)),
        body: c.body,
        ignore: jsonIgnore(c.ignoreJsonFields),
        maxBody: c.maxBody,
      };
    }
  }

  /** A request wants() chose whose body could not be copied after all (another middleware read only its start). */
  skipped(): void {
    this.log.figures.skipped++;
  }

  /**
   * Whether this request is copied: not an upgrade, not itself a copy, the sample, room under
   * maxInflight, a body of known length up to maxBody. Decided before the body is read; cheap.
   */
  wants(ctx: RequestContext): boolean {
    if (ctx.upgrade !== null) return false;
    const h = ctx.req.headers;
    const f = this.log.figures;
    if (h[MIRROR_HEADER] !== undefined) {
      f.skipped++;
      return false;
    }
    const sample = this.config.sample;
    if (sample < 1 && !(Math.random() < sample)) return false;
    if (this.log.inflight >= this.config.maxInflight) {
      f.dropped++;
      return false;
    }
    const cl = h['content-length'];
    if (cl === undefined) {
      if (h['transfer-encoding'] !== undefined || h2HasBody(ctx.req)) {
        f.skipped++;
        return false;
      }
    } else if (cl !== '0' && !(Number(cl) <= this.config.maxBody)) {
      f.skipped++;
      return false;
    }
    return true;
  }

  /**
   * Sends the copy (the upstream request as built for the client's, with `body`: the request body
   * read whole, or null) and returns a filter around ctx.res that captures the client's answer for
   * the comparison, or null when compare is off. Never throws, never delays the client.
   */
  start(ctx: RequestContext, ureq: UpstreamRequest, body: Buffer | null): Responder | null {
    try {
      const log = this.log;
      // wants() looked before the body was read; copies may have started since.
      if (log.inflight >= this.config.maxInflight) {
        log.figures.dropped++;
        return null;
      }
      const c = new Comparison(this, ctx);
      const filter = this.comparing === null ? null : new MirrorFilter(ctx.res, c);
      c.send(ureq, body);
      return filter;
    } catch {
      return null;
    }
  }
}

function counter(): () => number {
  let n = 0;
  return () => ++n;
}

/** One answer as noted for the comparison. */
class Side {
  status = 0;
  /** The compared headers' values (joined with ", "); absent ones are not set. */
  headers: Record<string, string> = {};
  length = 0;
  /** The body so far, up to maxBody; null when not compared, or once it has grown past maxBody. */
  chunks: Buffer[] | null;
  /** Bytes in `chunks`. */
  kept = 0;
  /** A body longer than maxBody: its sha256 so far (the kept chunks and all after); null before. */
  hash: Hash | null = null;
  encoding = '';
  readonly maxBody: number;

  constructor(comparing: Comparing | null) {
    this.chunks = comparing !== null && comparing.body !== 'none' ? [] : null;
    this.maxBody = comparing?.maxBody ?? 0;
  }

  head(status: number, headers: Record<string, unknown>, compared: readonly string[]): void {
    this.status = status;
    for (const name in headers) {
      const lower = name.toLowerCase();
      if (lower === 'content-encoding') this.encoding = String(headers[name]).trim().toLowerCase();
      if (!compared.includes(lower)) continue;
      const v = headers[name];
      if (v === undefined) continue;
      const s = Array.isArray(v) ? v.join(', ') : String(v);
      this.headers[lower] = this.headers[lower] === undefined ? s : `${this.headers[lower]}, ${s}`;
    }
  }

  /**
   * A body chunk. Kept by reference (the transports hand over chunks they do not reuse) up to
   * maxBody; beyond it the kept ones are hashed, let go, and the rest only hashed.
   */
  data(chunk: Buffer): void {
    this.length += chunk.length;
    const chunks = this.chunks;
    if (chunks !== null) {
      if (this.kept + chunk.length <= this.maxBody) {
        chunks.push(chunk);
        this.kept += chunk.length;
        return;
      }
      const h = createHash('sha256');
      for (const c of chunks) h.update(c);
      this.hash = h;
      this.chunks = null;
      this.kept = 0;
    }
    this.hash?.update(chunk);
  }

  capture(): BodyCapture {
    return {
      length: this.length,
      bytes:
        this.chunks === null
          ? null
          : this.chunks.length === 1
            ? this.chunks[0]
            : Buffer.concat(this.chunks, this.kept),
      hash: this.hash === null ? null : this.hash.digest('hex'),
      encoding: this.encoding,
    };
  }
}

type Controller = Dispatcher.DispatchController;

const WAITING = 0;
const DONE = 1;
/** The mirror failed / the client's answer was not complete. */
const BROKEN = 2;

/**
 * One copy: the dispatch handler of the mirror's request, and the comparison of its answer with
 * the client's (noted by MirrorFilter). Everything here runs off the client's path and catches
 * what it throws.
 */
class Comparison implements Dispatcher.DispatchHandler {
  readonly mirror: Mirror;
  readonly ctx: RequestContext;
  readonly requestId: string;
  readonly mirrorId: string;
  /** `GET /path?query`, as the client asked. */
  readonly what: string;
  readonly primary: Side;
  readonly copy: Side;
  primaryState = WAITING;
  /** end() was called on the client's answer (it is complete, even if the transport closes inside end()). */
  primaryEnding = false;
  copyState = WAITING;
  copyError = '';
  target: Target | undefined = undefined;
  controller: Controller | null = null;
  timer: NodeJS.Timeout | undefined = undefined;
  timedOut: ProxyError | undefined = undefined;
  /** The copy has left maxInflight (its answer is complete, or it failed). */
  released = false;
  settled = false;
  /** What send() copied, until the copy is dispatched. */
  request: { method: string; path: string; headers: string[]; body: Buffer | null } | null = null;

  constructor(mirror: Mirror, ctx: RequestContext) {
    this.mirror = mirror;
    this.ctx = ctx;
    this.requestId = ctx.id;
    this.mirrorId = `${ctx.id}-m`;
    this.what = `${ctx.req.method ?? 'GET'} ${ctx.path}${ctx.query}`;
    this.primary = new Side(mirror.comparing);
    this.copy = new Side(mirror.comparing);
    // Without compare nothing is noted of the client's answer: only the copy's outcome counts.
    if (mirror.comparing === null) this.primaryState = DONE;
  }

  /**
   * Counts the copy and copies what it needs of the request now (hooks on the client's own
   * request may change `ureq` later); the copy itself is sent on a later turn, after the client's
   * request has gone out.
   */
  send(ureq: UpstreamRequest, body: Buffer | null): void {
    const log = this.mirror.log;
    log.inflight++;
    log.figures.sent++;
    log.copies.add(this);
    const src = ureq.headers;
    const headers: string[] = [];
    for (let i = 0; i < src.length; i += 2) {
      const name = src[i];
      if (name === 'host' || name === MIRROR_HEADER || name === MIRROR_ID_HEADER) continue;
      headers.push(name, src[i + 1]);
    }
    this.request = { method: ureq.method, path: ureq.path, headers, body };
    setImmediate(dispatchCopy, this);
  }

  dispatch(): void {
    const req = this.request;
    this.request = null;
    if (req === null || this.copyState !== WAITING) return;
    if (this.timedOut !== undefined) return this.onResponseError(null, this.timedOut);
    const m = this.mirror;
    const upstream = m.upstream;
    let target: Target | undefined;
    try {
      // pick reads ctx (client address, path, hash key) and changes none of it.
      target = upstream.pick(this.ctx);
    } catch {
      target = undefined;
    }
    if (target === undefined)
      return this.copyFailed('no_healthy_target: no available target in the mirror upstream');
    this.target = target;
    const host =
      upstream.settings.passHostHeader && this.ctx.hostHeader !== '' ? this.ctx.hostHeader : target.authority;
    req.headers.push('host', host, MIRROR_HEADER, '1', MIRROR_ID_HEADER, this.mirrorId);
    const timeout = m.config.timeout;
    this.timer = setTimeout(timeoutCopy, timeout, this);
    this.timer.unref?.();
    target.active++;
    try {
      target.pool.dispatch(
        {
          method: req.method,
          path: req.path,
          headers: req.headers,
          body: req.body === null ? null : Readable.from([req.body], { objectMode: false }),
          headersTimeout: timeout,
          bodyTimeout: timeout,
        },
        this,
      );
    } catch (err) {
      this.onResponseError(null, err as Error);
    }
  }

  onTimeout(): void {
    this.timer = undefined;
    this.stop(
      new ProxyError('upstream_timeout', `no complete answer within ${this.mirror.config.timeout}ms`),
    );
  }

  /** Ends the copy (a shutdown): it counts as failed. */
  abort(reason: string): void {
    this.stop(new ProxyError('upstream_reset', `copy aborted: ${reason}`));
  }

  stop(err: ProxyError): void {
    if (this.copyState !== WAITING) return;
    if (this.controller !== null) this.controller.abort(err);
    else this.timedOut = err;
  }

  // ---- the copy's dispatch handler

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.timedOut !== undefined) controller.abort(this.timedOut);
  }

  onResponseStart(
    _controller: Controller,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode < 200 || this.copyState !== WAITING) return;
    try {
      const comparing = this.mirror.comparing;
      if (comparing === null) this.copy.status = statusCode;
      else this.copy.head(statusCode, this.asClientSees(statusCode, headers), comparing.headers);
    } catch {
      // noted as far as it went
    }
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.copyState === WAITING) this.copy.data(chunk);
  }

  onResponseEnd(): void {
    if (this.copyState !== WAITING) return;
    this.copyState = DONE;
    this.release();
    this.settle();
  }

  onResponseError(_controller: Controller | null, err: Error): void {
    if (this.copyState !== WAITING) return;
    const e = classifyUpstreamError(err);
    this.copyFailed(`${e.reason}: ${e.message}`);
  }

  copyFailed(detail: string): void {
    this.copyState = BROKEN;
    this.copyError = detail;
    this.mirror.log.figures.failed++;
    this.release();
    this.settle();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.mirror.log.inflight--;
    this.mirror.log.copies.delete(this);
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.target !== undefined) this.target.active--;
    this.controller = null;
  }

  /**
   * The mirror's head as the client would have been sent it: a Location pointing at the mirror
   * target rewritten as the client's is, and the route's onResponse hooks (headers middleware) run.
   */
  asClientSees(status: number, raw: Record<string, string | string[] | undefined>): Record<string, unknown> {
    const headers: Record<string, string | string[]> = {};
    for (const k in raw) {
      const v = raw[k];
      if (v !== undefined) headers[k] = v;
    }
    const ctx = this.ctx;
    for (const name of ['location', 'content-location']) {
      const v = headers[name];
      if (typeof v === 'string') headers[name] = this.rewrite(v);
    }
    const hooks = ctx.route?.onResponse;
    if (hooks != null) {
      const head: ResponseHead = { status, headers };
      for (const h of hooks) {
        try {
          h.onResponse?.(ctx, head);
        } catch {
          // a hook that fails on the copy changes nothing of it
        }
      }
      return head.headers;
    }
    return headers;
  }

  /** A Location at the mirror target, as the client's at its target is rewritten (forward.ts rewriteLocation). */
  rewrite(loc: string): string {
    const mt = this.target;
    const pt = this.ctx.target;
    if (mt === undefined || pt === undefined) return loc;
    const origin = mt.id;
    if (loc.length < origin.length || loc.slice(0, origin.length).toLowerCase() !== origin) return loc;
    const rest = loc.slice(origin.length);
    if (rest !== '' && rest[0] !== '/' && rest[0] !== '?' && rest[0] !== '#') return loc;
    return rewriteLocation(pt.id + rest, this.ctx);
  }

  // ---- the client's answer (from MirrorFilter)

  primaryDone(): void {
    if (this.primaryState !== WAITING) return;
    this.primaryState = DONE;
    this.settle();
  }

  primaryBroken(): void {
    if (this.primaryState !== WAITING || this.primaryEnding) return;
    this.primaryState = BROKEN;
    this.settle();
  }

  // ---- the comparison

  /**
   * Once both sides are over: figures, and the differences recorded, on a turn of its own, so
   * that the work (parsing two JSON bodies) never runs inside a call on the client's answer.
   */
  settle(): void {
    if (this.settled || this.primaryState === WAITING || this.copyState === WAITING) return;
    this.settled = true;
    setImmediate(compareCopy, this);
  }

  compare(): void {
    const m = this.mirror;
    const log = m.log;
    const f = log.figures;
    const comparing = m.comparing;
    const p = this.primary;
    const c = this.copy;
    const primaryStatus = comparing === null ? this.ctx.res.status : p.status;
    if (this.copyState === BROKEN) {
      log.record({
        kind: 'error',
        path: this.what,
        primary: { requestId: this.requestId, status: primaryStatus },
        mirror: { requestId: this.mirrorId, status: c.status },
        detail: truncate(this.copyError),
      });
      return;
    }
    if (comparing === null) return;
    if (this.primaryState === BROKEN) {
      f.incomplete++;
      return;
    }
    f.compared++;
    let differences = 0;
    const side = (s: Side, id: string, value?: string): DiffSide =>
      value === undefined ? { requestId: id, status: s.status } : { requestId: id, status: s.status, value };
    const rec = (kind: DiffKind, detail: string, pv?: string, mv?: string) => {
      differences++;
      log.record({
        kind,
        path: this.what,
        primary: side(p, this.requestId, pv === undefined ? undefined : truncate(pv)),
        mirror: side(c, this.mirrorId, mv === undefined ? undefined : truncate(mv)),
        detail,
      });
    };
    if (p.status !== c.status) rec('status', `status ${p.status} vs ${c.status}`);
    for (const name of comparing.headers) {
      const a = p.headers[name];
      const b = c.headers[name];
      if (a !== b) rec('header', `header ${name}`, a ?? '(absent)', b ?? '(absent)');
    }
    if (comparing.body !== 'none') {
      const d = bodyDiff(comparing.body, p.capture(), c.capture(), comparing.ignore, comparing.maxBody);
      if (d !== null) rec('body', d.detail, d.primary, d.mirror);
    }
    if (differences === 0) f.matched++;
    else f.differed++;
  }
}

// Module-level callbacks with the copy as their argument: no closures per copy.
function dispatchCopy(c: Comparison): void {
  try {
    c.dispatch();
  } catch (err) {
    c.onResponseError(null, err as Error);
  }
}

function timeoutCopy(c: Comparison): void {
  c.onTimeout();
}

function compareCopy(c: Comparison): void {
  try {
    c.compare();
  } catch {
    // a comparison that fails records nothing more
  }
}

/**
 * Around the client's responder: passes every call on unchanged and at once, noting the answer's
 * status, compared headers and body for the comparison.
 */
class MirrorFilter extends ResponderFilter {
  readonly c: Comparison;

  constructor(outer: Responder, c: Comparison) {
    super(outer);
    this.c = c;
    outer.onClose(() => {
      // Closed before end(): the client left, or the answer was cut.
      c.primaryBroken();
    });
  }

  override writeHead(status: number, headers: OutHeaders, close?: boolean): void {
    const c = this.c;
    if (status >= 200 && c.primary.status === 0) {
      try {
        c.primary.head(status, headers, this.c.mirror.comparing?.headers ?? []);
      } catch {
        // noted as far as it went
      }
    }
    this.outer.writeHead(status, headers, close);
  }

  override write(chunk: Buffer): boolean {
    this.c.primary.data(chunk);
    return this.outer.write(chunk);
  }

  override end(chunk?: Buffer | string): void {
    const c = this.c;
    if (chunk !== undefined) c.primary.data(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    // Before passing on: the transport may close (and call onClose) inside end().
    c.primaryEnding = true;
    this.outer.end(chunk);
    c.primaryDone();
  }

  override destroy(): void {
    this.c.primaryBroken();
    this.outer.destroy();
  }
}
