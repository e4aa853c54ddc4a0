// Where the cache keeps responses: an index (primary key → variants), a byte bound with least
// recently used eviction, and bodies in memory or in files.
//
// A response is stored while it streams to its first client: `begin` puts an entry in the index at
// once (so concurrent requests for it read along instead of going upstream), `append` adds each
// chunk, and `complete` makes it whole. Every byte is counted against maxSize the moment it arrives,
// in-progress bodies included, so the bound holds under churn; an entry still being written is never
// evicted, and one that cannot fit is abandoned (its body was streamed to its client anyway).
//
// The disk store writes the body to a temporary file as it arrives, renames it into place when it
// is complete, then writes the head next to it (`<hash>.meta`, JSON); at start it reads every
// complete pair back into the index, so a restart keeps the cache. Until the file is in place the
// body is served from memory.
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Freshness, StoredHeaders } from './policy.ts';

export interface Entry {
  /** The primary key (cache.key parts). */
  readonly key: string;
  /** The secondary key: the Vary'd request headers' normalised values. */
  readonly variant: string;
  /** scheme://host/path?query, for purging by URL or prefix. */
  readonly url: string;
  readonly vary: readonly string[];
  readonly status: number;
  headers: StoredHeaders;
  fresh: Freshness;
  tags: readonly string[];
  /** Body bytes received so far. */
  size: number;
  complete: boolean;
  /** Abandoned while being written (too large, no room, the upstream failed): readers are cut. */
  failed: boolean;
  /** The body in memory (the whole of it once complete, or what has arrived); null once it is on disk. */
  chunks: Buffer[] | null;
  /** The disk store's body file once written. */
  file: string | null;
  /** Bytes counted against maxSize: body plus an estimate of the head and the entry itself. */
  cost: number;
  /** A background refresh (stale-while-revalidate) is running. */
  refreshing: boolean;
  /** Readers of an entry still being written, called on every new chunk and at the end. */
  readers: Set<() => void> | null;
  /** Still in the index. */
  live: boolean;
  /** The disk store's file stem. */
  readonly stem: string;
  /** The disk store's open temporary body file, and its name. */
  fd: number;
  temp: string;
  /** Bytes counted against maxSize ahead of the body (its Content-Length), not yet arrived. */
  reserved: number;
}

/** What an entry costs beyond its body: the head's bytes plus the objects around it. */
const ENTRY_OVERHEAD = 640;

function headCost(h: StoredHeaders): number {
  let n = 0;
  for (const k in h) {
    const v = h[k];
    n += k.length + 4 + (Array.isArray(v) ? v.reduce((a, x) => a + x.length + 4, 0) : v.length);
  }
  return n;
}

export interface StoreFigures {
  bytes: number;
  objects: number;
  evictions: number;
}

export class CacheStore {
  maxSize: number;
  maxObjectSize: number;
  /** Directory of the disk store; null in memory. */
  readonly dir: string | null;
  readonly index = new Map<string, Entry[]>();
  /** Every entry, least recently used first (Map keeps insertion order; a use re-inserts). */
  readonly lru = new Map<Entry, true>();
  bytes = 0;
  evictions = 0;
  closed = false;

  constructor(maxSize: number, maxObjectSize: number, dir: string | null) {
    this.maxSize = maxSize;
    this.maxObjectSize = maxObjectSize;
    this.dir = dir;
    if (dir !== null) {
      mkdirSync(dir, { recursive: true });
      this.load();
    }
  }

  get objects(): number {
    return this.lru.size;
  }

  /** The variant of `key` whose Vary'd headers match, in the index (complete or being written). */
  lookup(key: string, variantOf: (vary: readonly string[]) => string): Entry | undefined {
    const list = this.index.get(key);
    if (list === undefined) return undefined;
    for (const e of list) {
      if (e.failed) continue;
      if (variantOf(e.vary) === e.variant) {
        this.lru.delete(e);
        this.lru.set(e, true);
        return e;
      }
    }
    return undefined;
  }

  /** Starts an entry that replaces any entry of the same key and variant. Null: it cannot be stored. */
  begin(
    key: string,
    variant: string,
    url: string,
    vary: readonly string[],
    status: number,
    headers: StoredHeaders,
    fresh: Freshness,
    tags: readonly string[],
    /** The body's length when the response says it (Content-Length): room for it is made at once. */
    declared = -1,
  ): Entry | null {
    const stem = createHash('sha256').update(`${key}\0${variant}`).digest('hex').slice(0, 40);
    const e: Entry = {
      key,
      variant,
      url,
      vary,
      status,
      headers,
      fresh,
      tags,
      size: 0,
      complete: false,
      failed: false,
      chunks: [],
      file: null,
      cost: ENTRY_OVERHEAD + key.length + variant.length + url.length + headCost(headers),
      refreshing: false,
      readers: null,
      live: true,
      stem,
      fd: -1,
      temp: '',
      reserved: Math.max(declared, 0),
    };
    if (!this.reserve(e.cost + e.reserved)) return null;
    if (this.dir !== null) {
      try {
        e.temp = join(this.dir, `${stem}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
        e.fd = openSync(e.temp, 'w', 0o600);
      } catch {
        this.bytes -= e.cost;
        return null;
      }
    }
    const list = this.index.get(key);
    if (list !== undefined) for (const old of [...list]) if (old.variant === variant) this.drop(old, false);
    const now = this.index.get(key);
    if (now === undefined) this.index.set(key, [e]);
    else now.push(e);
    this.lru.set(e, true);
    return e;
  }

  /** Adds body bytes; false when the entry has been abandoned (too large or no room). */
  append(e: Entry, chunk: Buffer): boolean {
    if (e.failed || !e.live) return false;
    const fromReserve = Math.min(e.reserved, chunk.length);
    e.reserved -= fromReserve;
    if (e.size + chunk.length > this.maxObjectSize || !this.reserve(chunk.length - fromReserve)) {
      this.bytes -= fromReserve;
      this.abandon(e);
      return false;
    }
    e.size += chunk.length;
    e.cost += chunk.length;
    (e.chunks as Buffer[]).push(chunk);
    if (e.fd >= 0) {
      try {
        writeSync(e.fd, chunk);
      } catch {
        this.abandon(e);
        return false;
      }
    }
    this.notify(e);
    return true;
  }

  complete(e: Entry): void {
    if (e.failed || !e.live) return;
    // A body shorter than it said: the room kept for the rest is given back.
    this.bytes -= e.reserved;
    e.reserved = 0;
    const chunks = e.chunks as Buffer[];
    if (chunks.length > 1) e.chunks = [Buffer.concat(chunks)];
    e.complete = true;
    if (e.fd >= 0) {
      try {
        closeSync(e.fd);
        e.fd = -1;
        const body = this.bodyPath(e);
        renameSync(e.temp, body);
        this.writeMeta(e);
        e.file = body;
        e.chunks = null;
      } catch {
        // The body stays in memory; it is simply not kept across a restart.
      }
    }
    this.notify(e);
    e.readers = null;
  }

  /** Gives up an entry being written: readers along it are cut, its bytes released. */
  abandon(e: Entry): void {
    if (e.failed) return;
    e.failed = true;
    this.drop(e, false);
    this.notify(e);
    e.readers = null;
  }

  /** A refreshed head (after a 304) replaces the stored one. */
  update(e: Entry, headers: StoredHeaders, fresh: Freshness): void {
    const delta = headCost(headers) - headCost(e.headers);
    // A bigger head is counted like any other bytes: room is made for it, or the entry goes.
    if (delta > 0 && !this.reserve(delta)) {
      this.drop(e, true);
      return;
    }
    if (delta < 0) this.bytes += delta;
    e.headers = headers;
    e.fresh = fresh;
    e.cost += delta;
    if (e.file !== null) {
      try {
        this.writeMeta(e);
      } catch {
        // The old head stays on disk: at worst a restart revalidates once more.
      }
    }
  }

  /** Removes an entry from the index (a purge, an invalidation, eviction). */
  drop(e: Entry, evicted: boolean): void {
    if (!e.live) return;
    e.live = false;
    this.bytes -= e.cost + e.reserved;
    e.reserved = 0;
    if (evicted) this.evictions++;
    this.lru.delete(e);
    const list = this.index.get(e.key);
    if (list !== undefined) {
      const i = list.indexOf(e);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.index.delete(e.key);
    }
    if (this.dir !== null) {
      if (e.fd >= 0) {
        try {
          closeSync(e.fd);
        } catch {}
        e.fd = -1;
        rmQuiet(e.temp);
      }
      if (e.file !== null) {
        rmQuiet(`${e.file.slice(0, -5)}.meta`);
        rmQuiet(e.file);
      }
    }
    if (!e.complete && !e.failed) {
      e.failed = true;
      this.notify(e);
      e.readers = null;
    }
  }

  /** Drops every entry `match` selects; returns how many. */
  purge(match: (e: Entry) => boolean): number {
    let n = 0;
    for (const e of [...this.lru.keys()])
      if (match(e)) {
        this.drop(e, false);
        n++;
      }
    return n;
  }

  /** The body from byte `start` to `end` inclusive, as a stream (disk) or buffers (memory). */
  body(e: Entry, start = 0, end = e.size - 1): Buffer | Readable {
    if (e.chunks !== null) {
      const whole = e.chunks.length === 1 ? e.chunks[0] : Buffer.concat(e.chunks);
      return start === 0 && end === whole.length - 1 ? whole : whole.subarray(start, end + 1);
    }
    return createReadStream(e.file as string, { start, end });
  }

  close(): void {
    this.closed = true;
    for (const e of this.lru.keys())
      if (!e.complete && e.fd >= 0) {
        try {
          closeSync(e.fd);
        } catch {}
        e.fd = -1;
        rmQuiet(e.temp);
      }
  }

  /** Makes room for `n` more bytes by evicting complete entries, least recently used first. */
  reserve(n: number): boolean {
    if (this.bytes + n > this.maxSize) {
      for (const e of this.lru.keys()) {
        if (this.bytes + n <= this.maxSize) break;
        if (e.complete) this.drop(e, true);
      }
      if (this.bytes + n > this.maxSize) return false;
    }
    this.bytes += n;
    return true;
  }

  notify(e: Entry): void {
    if (e.readers !== null) for (const r of [...e.readers]) r();
  }

  bodyPath(e: Entry): string {
    return join(this.dir as string, `${e.stem}.body`);
  }

  writeMeta(e: Entry): void {
    const meta = JSON.stringify({
      key: e.key,
      variant: e.variant,
      url: e.url,
      vary: e.vary,
      status: e.status,
      headers: e.headers,
      fresh: e.fresh,
      tags: e.tags,
      size: e.size,
    });
    const path = join(this.dir as string, `${e.stem}.meta`);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, meta, { mode: 0o600 });
    renameSync(tmp, path);
  }

  /** Reads the disk store's complete entries back, oldest first; removes leftovers of unfinished writes. */
  load(): void {
    const dir = this.dir as string;
    const metas: { e: Entry; mtime: number }[] = [];
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name.endsWith('.tmp')) {
        rmQuiet(path);
        continue;
      }
      if (!name.endsWith('.meta')) continue;
      try {
        const m = JSON.parse(readFileSync(path, 'utf8'));
        if (!validMeta(m)) throw new Error('shape');
        const body = `${path.slice(0, -5)}.body`;
        const st = statSync(body);
        if (st.size !== m.size) throw new Error('size');
        const e: Entry = {
          key: String(m.key),
          variant: String(m.variant),
          url: String(m.url),
          vary: m.vary,
          status: Number(m.status),
          headers: m.headers,
          fresh: m.fresh,
          tags: m.tags ?? [],
          size: m.size,
          complete: true,
          failed: false,
          chunks: null,
          file: body,
          cost: 0,
          refreshing: false,
          readers: null,
          live: true,
          stem: name.slice(0, -5),
          fd: -1,
          temp: '',
          reserved: 0,
        };
        e.cost =
          ENTRY_OVERHEAD + e.key.length + e.variant.length + e.url.length + headCost(e.headers) + e.size;
        metas.push({ e, mtime: st.mtimeMs });
      } catch {
        rmQuiet(path);
        rmQuiet(`${path.slice(0, -5)}.body`);
      }
    }
    metas.sort((a, b) => a.mtime - b.mtime);
    for (const { e } of metas) {
      if (!this.reserve(e.cost)) {
        rmQuiet(e.file as string);
        rmQuiet(`${(e.file as string).slice(0, -5)}.meta`);
        continue;
      }
      const list = this.index.get(e.key);
      if (list === undefined) this.index.set(e.key, [e]);
      else list.push(e);
      this.lru.set(e, true);
    }
    // Bodies without a head are leftovers of a crash between the two renames.
    const stems = new Set<string>();
    for (const e of this.lru.keys()) stems.add(e.stem);
    for (const name of readdirSync(dir))
      if (name.endsWith('.body') && !stems.has(name.slice(0, -5))) rmQuiet(join(dir, name));
  }
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A head file as writeMeta writes it: anything else (a damaged or foreign file) is dropped at load. */
function validMeta(m: unknown): boolean {
  if (m === null || typeof m !== 'object') return false;
  const o = m as Record<string, unknown>;
  const f = o.fresh as Record<string, unknown> | null;
  const h = o.headers as Record<string, unknown> | null;
  return (
    isStr(o.key) &&
    isStr(o.variant) &&
    isStr(o.url) &&
    Array.isArray(o.vary) &&
    o.vary.every(isStr) &&
    isNum(o.status) &&
    isNum(o.size) &&
    Array.isArray(o.tags ?? []) &&
    h !== null &&
    typeof h === 'object' &&
    !Array.isArray(h) &&
    Object.values(h).every((v) => isStr(v) || (Array.isArray(v) && v.every(isStr))) &&
    f !== null &&
    typeof f === 'object' &&
    ['responseTime', 'initialAge', 'lifetime', 'staleWhileRevalidate', 'staleIfError'].every((k) =>
      isNum(f[k]),
    ) &&
    typeof f.noCache === 'boolean' &&
    typeof f.mustRevalidate === 'boolean'
  );
}

function rmQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}
