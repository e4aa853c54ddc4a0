// One named cache (a `cache` middleware) and the registry that keeps caches across reloads.
//
// A reload builds new middlewares; the registry hands the new `cache` middleware of the same name
// the cache it had, with its contents, as long as where it stores (memory, or the same directory)
// is unchanged; limits and rules take their new values. The admin API's purge and /metrics read
// the registry.
import type { CacheConfig } from '../config/schema.ts';
import type { PolicyOptions } from './policy.ts';
import { CacheStore, type Entry } from './store.ts';

export interface CacheFigures {
  hits: number;
  misses: number;
  /** Answered from a stale entry: stale-while-revalidate, max-stale, stale-if-error. */
  stale: number;
  /** Conditional requests upstream answered 304 (the entry refreshed). */
  revalidated: number;
  /** Requests that waited for another's fetch and were answered by it. */
  coalesced: number;
  /** Responses stored. */
  stored: number;
  /** Requests the cache did not consider (methods, no-store requests). */
  bypass: number;
  purged: number;
  invalidated: number;
}

/** A fetch under way for a key: concurrent misses wait for its head. */
export interface Inflight {
  readonly done: Promise<void>;
  resolve: () => void;
}

export class HttpCache {
  readonly name: string;
  config: CacheConfig;
  policy: PolicyOptions;
  readonly store: CacheStore;
  readonly inflight = new Map<string, Inflight>();
  readonly figures: CacheFigures = {
    hits: 0,
    misses: 0,
    stale: 0,
    revalidated: 0,
    coalesced: 0,
    stored: 0,
    bypass: 0,
    purged: 0,
    invalidated: 0,
  };
  refs = 0;

  constructor(name: string, config: CacheConfig) {
    this.name = name;
    this.config = config;
    this.policy = policyOptions(config);
    this.store = new CacheStore(
      config.maxSize,
      config.maxObjectSize,
      config.store === 'disk' ? (config.path as string) : null,
    );
  }

  /** The same store (kind and place): a reload keeps the contents. */
  sameStore(c: CacheConfig): boolean {
    return c.store === this.config.store && c.path === this.config.path;
  }

  /** The cache's name in Cache-Status (RFC 9211). */
  get label(): string {
    return this.config.cacheStatusName;
  }

  configure(c: CacheConfig): void {
    this.config = c;
    this.policy = policyOptions(c);
    this.store.maxSize = c.maxSize;
    this.store.maxObjectSize = c.maxObjectSize;
    this.store.reserve(0);
  }

  /** Starts a fetch for `key` (the caller is the one that goes upstream); null when one is under way. */
  lead(key: string): Inflight | null {
    if (this.inflight.has(key)) return null;
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const f: Inflight = {
      done,
      resolve: () => {
        if (this.inflight.get(key) === f) this.inflight.delete(key);
        resolve();
      },
    };
    this.inflight.set(key, f);
    return f;
  }

  /** Waits for the fetch under way for `key`, at most lockTimeout. */
  async wait(key: string): Promise<void> {
    const f = this.inflight.get(key);
    if (f === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      f.done,
      new Promise<void>((r) => {
        timer = setTimeout(r, this.config.lockTimeout);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Removes every variant of a key (invalidation after an unsafe method, §4.4). */
  invalidate(key: string): number {
    const list = this.store.index.get(key);
    if (list === undefined) return 0;
    let n = 0;
    for (const e of [...list]) {
      this.store.drop(e, false);
      n++;
    }
    this.figures.invalidated += n;
    return n;
  }

  purge(match: (e: Entry) => boolean): number {
    const n = this.store.purge(match);
    this.figures.purged += n;
    return n;
  }

  close(): void {
    this.store.close();
  }
}

function policyOptions(c: CacheConfig): PolicyOptions {
  return {
    storeSetCookie: c.storeSetCookie,
    storeAuthorized: c.storeAuthorized,
    heuristic: c.heuristic,
    maxHeuristic: c.maxHeuristic / 1000,
    cdnCacheControl: c.cdnCacheControl,
  };
}

/** What `POST /api/v1/cache/purge` removes: one URL (all its variants), a prefix, or a tag. */
export type PurgeSelector = ({ url: string } | { prefix: string } | { tag: string }) & {
  /** Only this cache (a `cache` middleware's name); default: every cache. */
  cache?: string;
};

/** The running process's caches by middleware name (across reloads). */
export class CacheRegistry {
  readonly caches = new Map<string, HttpCache>();

  acquire(name: string, config: CacheConfig): HttpCache {
    const c = this.caches.get(name);
    if (c?.sameStore(config)) {
      c.configure(config);
      c.refs++;
      return c;
    }
    const n = new HttpCache(name, config);
    n.refs = 1;
    this.caches.set(name, n);
    return n;
  }

  release(c: HttpCache): void {
    if (--c.refs > 0) return;
    c.close();
    if (this.caches.get(c.name) === c) this.caches.delete(c.name);
  }

  /** Removes what the selector names from every cache (or the one named); returns how many entries. */
  purge(sel: PurgeSelector, only?: string): number {
    const match = purgeMatcher(sel);
    let n = 0;
    for (const c of this.caches.values()) if (only === undefined || c.name === only) n += c.purge(match);
    return n;
  }
}

function purgeMatcher(sel: PurgeSelector): (e: Entry) => boolean {
  if ('tag' in sel) return (e) => e.tags.includes(sel.tag);
  if ('url' in sel) {
    const url = normaliseUrl(sel.url);
    return (e) => e.url === url;
  }
  const p = sel.prefix;
  if (p.startsWith('/')) return (e) => pathOf(e.url).startsWith(p);
  const prefix = normaliseUrl(p);
  return (e) => e.url.startsWith(prefix);
}

/** scheme://host[:port]/path?query as entries record it: scheme and host lower case, a default port dropped. */
export function normaliseUrl(u: string): string {
  try {
    const url = new URL(u);
    return `${url.protocol}//${url.host.toLowerCase()}${url.pathname}${url.search}`;
  } catch {
    return u;
  }
}

function pathOf(url: string): string {
  const i = url.indexOf('/', url.indexOf('//') + 2);
  return i < 0 ? '/' : url.slice(i);
}
