// Geo data from a MaxMind DB file (GeoLite2-Country, GeoIP2-City, DB-IP's country files, ...): the
// country and continent of a client address, for the geo route matcher and {geo.*} placeholders.
//
// The file is read whole into memory and searched with the `maxmind` package's Reader. It is opened
// synchronously when the Plan compiles (a missing or broken file fails the config load) and then
// polled: its stat (inode, size, mtime, ctime) is compared with that of the version loaded, which
// sees both in-place rewrites and atomic replacements (a temporary file renamed over it). A changed
// file is read once its stat has stayed the same for one poll (so a copy still being written is not
// read), checked, and swapped in whole; one that does not load keeps the data already loaded and is
// reported through onError, once per version.
//
// (fs.watchFile would do the polling, but its baseline is its own first stat, taken a little after
// the file was read: a replacement in between would never be seen. Comparing with the stat of the
// version actually read has no such gap.)

import { closeSync, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { type CountryResponse, Reader } from 'maxmind';

export interface GeoInfo {
  /** ISO 3166-1 alpha-2, upper case (DE). */
  readonly country?: string;
  /** Continent code (EU). */
  readonly continent?: string;
}

export interface GeoDb {
  /** The address's country and continent, or null when the database has nothing for it. Never throws. */
  lookup(ip: string): GeoInfo | null;
  close(): void;
}

export interface GeoDbOptions {
  /** How often the file is checked for changes, in ms (default 2000); 0 does not watch it. */
  readonly watchInterval?: number;
  /** A changed file that could not be loaded (the loaded data stays); the message starts `geoip.database:`. */
  readonly onError?: (message: string) => void;
  /** A changed file was loaded and is now answering lookups. */
  readonly onReload?: (info: GeoDbInfo) => void;
}

/** What the file says about itself (its metadata). */
export interface GeoDbInfo {
  readonly databaseType: string;
  readonly ipVersion: 4 | 6;
  /** When the file was built (its build_epoch). */
  readonly buildEpoch: Date;
}

const DEFAULT_WATCH_INTERVAL_MS = 2000;
/** Decoded data records kept per loaded file, by their offset in it (see RecordCache). */
const RECORD_CACHE_SIZE = 4096;
/** Answers kept per loaded file, by address (see RecentAnswers). */
const RECENT_ADDRESSES = 2048;
const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'); // \xAB\xCD\xEFMaxMind.com
const MAX_METADATA_SIZE = 128 * 1024;

/** Opens the database (synchronously, at Plan compile); throws `geoip.database: reason`. */
export function openGeoDb(path: string, options: GeoDbOptions = {}): GeoDb {
  let file: Buffer;
  let version: string;
  try {
    // The stat and the content from one descriptor: they belong to the same file.
    const fd = openSync(path, 'r');
    try {
      version = versionOf(fstatSync(fd));
      file = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new Error(`geoip.database: cannot read ${path}: ${describeError(err)}`);
  }
  let loaded: Loaded;
  try {
    loaded = load(file);
  } catch (err) {
    throw new Error(`geoip.database: ${path}: ${(err as Error).message}`);
  }
  return new WatchedGeoDb(path, loaded, version, options);
}

class WatchedGeoDb implements GeoDb {
  readonly #path: string;
  readonly #options: GeoDbOptions;
  /** Swapped whole on reload: a lookup sees the old file or the new one, never a mix. */
  #loaded: Loaded;
  /** The file version (versionOf) last loaded or refused, or `error:CODE` while it cannot be read. */
  #version: string;
  /** A new version seen by the last poll, to be read if the next one still sees it. */
  #pending: string | null = null;
  #busy = false;
  #closed = false;
  readonly #timer: NodeJS.Timeout | null = null;

  constructor(path: string, loaded: Loaded, version: string, options: GeoDbOptions) {
    this.#path = path;
    this.#loaded = loaded;
    this.#version = version;
    this.#options = options;
    const interval = options.watchInterval ?? DEFAULT_WATCH_INTERVAL_MS;
    if (interval > 0) {
      this.#timer = setInterval(() => void this.#poll(), interval);
      // A watched database does not keep the process alive.
      this.#timer.unref();
    }
  }

  lookup(ip: string): GeoInfo | null {
    return this.#loaded.lookup(ip);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
  }

  async #poll(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    try {
      await this.#check();
    } catch {
      // #check reports what goes wrong; nothing may escape a timer.
    } finally {
      this.#busy = false;
    }
  }

  async #check(): Promise<void> {
    let now: string;
    try {
      now = versionOf(await stat(this.#path));
    } catch (err) {
      this.#unreadable(err);
      return;
    }
    if (now === this.#version) {
      this.#pending = null;
      return;
    }
    if (now !== this.#pending) {
      // Changed since the last poll: maybe still being written. Read it when it has settled.
      this.#pending = now;
      return;
    }
    this.#pending = null;
    let file: Buffer;
    let version: string;
    try {
      const handle = await open(this.#path, 'r');
      try {
        version = versionOf(await handle.stat());
        file = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (err) {
      this.#unreadable(err);
      return;
    }
    if (this.#closed) return;
    this.#version = version;
    let next: Loaded;
    try {
      next = load(file);
    } catch (err) {
      this.#report(`geoip.database: ${this.#path}: ${(err as Error).message}; keeping the loaded data`);
      return;
    }
    this.#loaded = next;
    try {
      this.#options.onReload?.(next.info);
    } catch {
      // A throwing callback must not stop the polling.
    }
  }

  /** The file cannot be read (deleted, or between a delete and a new write): keep what is loaded; say so once. */
  #unreadable(err: unknown): void {
    const code = (err as NodeJS.ErrnoException)?.code ?? 'unknown';
    this.#pending = null;
    if (this.#closed || this.#version === `error:${code}`) return;
    this.#version = `error:${code}`;
    this.#report(
      code === 'ENOENT'
        ? `geoip.database: ${this.#path} is gone; keeping the loaded data`
        : `geoip.database: cannot read ${this.#path}: ${describeError(err)}; keeping the loaded data`,
    );
  }

  #report(message: string): void {
    if (this.#closed) return;
    try {
      this.#options.onError?.(message);
    } catch {
      // As above.
    }
  }
}

/** What tells one version of the file from another. */
function versionOf(s: Stats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

/** One loaded file: its reader and what has been decoded from it. */
interface Loaded {
  readonly info: GeoDbInfo;
  lookup(ip: string): GeoInfo | null;
}

/** Checks a file's structure and makes a reader for it; throws with the reason it is not usable. */
function load(file: Buffer): Loaded {
  if (file.length >= 2 && file[0] === 0x1f && file[1] === 0x8b)
    throw new Error('is gzip-compressed; decompress it first (gunzip, or tar -xzf for a .tar.gz)');
  const marker = file.lastIndexOf(METADATA_MARKER);
  if (marker === -1) throw new Error('not a MaxMind DB file (no metadata section)');
  if (file.length - marker > MAX_METADATA_SIZE)
    throw new Error('not a MaxMind DB file (no metadata section)');

  const cache = new RecordCache(RECORD_CACHE_SIZE);
  let reader: Reader<CountryResponse>;
  try {
    reader = new Reader<CountryResponse>(file, { cache });
  } catch (err) {
    throw new Error(`not a valid MaxMind DB file: ${(err as Error).message}`);
  }
  const m = reader.metadata;
  if (m.binaryFormatMajorVersion !== 2)
    throw new Error(`MaxMind DB format version ${m.binaryFormatMajorVersion} is not supported (only 2)`);
  if (m.ipVersion !== 4 && m.ipVersion !== 6) throw new Error(`bad metadata: ip_version ${m.ipVersion}`);
  if (!Number.isSafeInteger(m.nodeCount) || m.nodeCount < 1)
    throw new Error(`bad metadata: node_count ${m.nodeCount}`);
  // The search tree, then 16 zero bytes, then the data section, then the metadata marker.
  const dataStart = m.searchTreeSize + 16;
  if (dataStart > marker) throw new Error('truncated or damaged: the search tree runs past the data section');
  for (let i = m.searchTreeSize; i < dataStart; i++)
    if (file[i] !== 0) throw new Error('damaged: no data section separator after the search tree');
  if (typeof m.databaseType !== 'string') throw new Error('bad metadata: no database_type');

  const ipv4Only = m.ipVersion === 4;
  // Record objects come back identical while the cache holds them, so each is projected once.
  const projected = new WeakMap<object, GeoInfo | null>();
  const search = (ip: string): GeoInfo | null => {
    try {
      const address = normalizeAddress(ip, ipv4Only);
      if (address === null) return null;
      const record: unknown = reader.get(address);
      if (record === null || typeof record !== 'object') return null;
      let info = projected.get(record);
      if (info === undefined) {
        info = project(record as GeoRecord);
        projected.set(record, info);
      }
      return info;
    } catch {
      return null; // a damaged record: no answer rather than a failed request
    }
  };
  const recent = new RecentAnswers(RECENT_ADDRESSES);
  return {
    info: { databaseType: m.databaseType, ipVersion: m.ipVersion, buildEpoch: m.buildEpoch },
    lookup(ip: string): GeoInfo | null {
      const known = recent.get(ip);
      if (known !== undefined) return known;
      const info = search(ip);
      // Longer strings are not addresses (an IPv6 address with a zone is ~60 characters at most).
      if (typeof ip === 'string' && ip.length <= 64) recent.set(ip, info);
      return info;
    },
  };
}

/** The parts of a GeoIP2/GeoLite2 (and DB-IP) record read here. */
interface GeoRecord {
  readonly country?: { readonly iso_code?: unknown };
  readonly registered_country?: { readonly iso_code?: unknown };
  readonly continent?: { readonly code?: unknown };
}

function project(record: GeoRecord): GeoInfo | null {
  // The country the address is in; failing that (anycast, some ranges), the one it is registered to.
  const country = code(record.country?.iso_code) ?? code(record.registered_country?.iso_code);
  const continent = code(record.continent?.code);
  if (country === undefined && continent === undefined) return null;
  const info: { country?: string; continent?: string } = {};
  if (country !== undefined) info.country = country;
  if (continent !== undefined) info.continent = continent;
  return Object.freeze(info);
}

function code(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v.toUpperCase() : undefined;
}

const MAPPED_DOTTED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;
const MAPPED_CANONICAL = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/;

/**
 * The address to search for, or null for one that is not an IP address (or an IPv6 address in an
 * IPv4-only file). An IPv4-mapped IPv6 address (::ffff:1.2.3.4, as a dual-stack socket reports an
 * IPv4 peer) becomes the IPv4 address, so it is found in any file; a zone (%eth0) is dropped.
 */
export function normalizeAddress(ip: string, ipv4Only = false): string | null {
  if (typeof ip !== 'string') return null;
  if (isIPv4(ip)) return ip;
  const dotted = MAPPED_DOTTED.exec(ip);
  if (dotted) return isIPv4(dotted[1]) ? dotted[1] : null;
  const zone = ip.indexOf('%');
  const bare = zone === -1 ? ip : ip.slice(0, zone);
  if (!isIPv6(bare)) return null;
  if (/ffff/i.test(bare)) {
    // Other spellings of a mapped address (0:0:0:0:0:ffff:0102:0304): the URL parser's canonical form.
    const m = MAPPED_CANONICAL.exec(new URL(`http://[${bare}]/`).hostname);
    if (m) {
      const hi = Number.parseInt(m[1], 16);
      const lo = Number.parseInt(m[2], 16);
      return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
    }
  }
  return ipv4Only ? null : bare;
}

/**
 * The reader's decode cache, by a record's offset in the file: a hit skips decoding the record (a
 * GeoLite2 country record is ~30 strings in 8 languages; a lookup costs ~40-100 µs without this, ~2
 * µs with it) and returns the same object, which the projection above is keyed on. Bounded; the
 * oldest entry goes first.
 */
class RecordCache {
  readonly #max: number;
  readonly #map = new Map<string | number, unknown>();

  constructor(max: number) {
    this.#max = max;
  }

  get(key: string | number): unknown {
    return this.#map.get(key);
  }

  set(key: string | number, value: unknown): void {
    if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, value);
  }
}

/**
 * The last answers, by address: a client sends many requests, and a hit skips parsing the address
 * and walking the tree (~2 µs → ~0.1 µs a lookup, measured on GeoIP2-City-Test and a synthetic
 * 20,000-network file). Two generations: a full one becomes the old one, whose hits move over; so
 * a hit costs no write, and what was not asked for in two generations is forgotten.
 */
class RecentAnswers {
  readonly #max: number;
  #current = new Map<string, GeoInfo | null>();
  #previous = new Map<string, GeoInfo | null>();

  constructor(max: number) {
    this.#max = max;
  }

  get(ip: string): GeoInfo | null | undefined {
    const hit = this.#current.get(ip);
    if (hit !== undefined) return hit;
    const old = this.#previous.get(ip);
    if (old !== undefined) this.set(ip, old);
    return old;
  }

  set(ip: string, info: GeoInfo | null): void {
    if (this.#current.size >= this.#max) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(ip, info);
  }
}

function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file';
  if (e?.code === 'EACCES') return 'permission denied';
  if (e?.code === 'EISDIR') return 'is a directory';
  return e?.message ?? String(err);
}
