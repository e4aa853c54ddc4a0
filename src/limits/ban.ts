// Automatic bans, as fail2ban does them: offences (limit refusals, WAF blocks, failed logins, bodies
// too slow) are counted per client address in a sliding window; `after` of them within `window`
// ban the address for `duration`, and every further ban of the same address doubles that, up to
// `maxDuration`. An address that has behaved for `maxDuration` since its last ban ended starts
// again from `duration`. Addresses in `allow` are never banned.
//
// Memory is bounded: offenders are tracked in an LRU (the least recently offending is forgotten
// first) and active bans are capped (expired ones are dropped first, then the oldest). The window
// is a sliding-window counter (the current fixed window plus the previous one weighted by how much
// of it still overlaps), so a tracked address costs a handful of numbers, whatever `after` is.
//
// The list is one per running Gatehouse, kept across reloads: a reload must not pardon anyone.
import type { BlockList } from 'node:net';
import { LRUCache } from 'lru-cache';
import { blockListOf, inList } from '../middleware/ipFilter.ts';

export interface BanConfig {
  /** Offences within `window` that ban an address. */
  after: number;
  /** ms */
  window: number;
  /** The first ban, ms; each further ban doubles it. */
  duration: number;
  /** The longest ban, ms. */
  maxDuration: number;
  /** Addresses or CIDRs never banned. */
  allow: readonly string[];
}

/** What the pipeline reports; free-form beyond these (the kind is a metric label: keep the set small). */
export type OffenceKind =
  | 'rate_limited'
  | 'client_upstream_limit'
  | 'waf_blocked'
  | 'login_failed'
  | 'body_too_slow'
  | 'max_connections_per_client'
  | (string & {});

/** One address that has offended recently. */
interface Track {
  /** Start of the current fixed window (ms). */
  start: number;
  /** Offences in the current window and in the one before it. */
  cur: number;
  prev: number;
  /** Bans so far (the next one lasts duration × 2^level). */
  level: number;
  /** When the last ban ended or was lifted (ms); 0: never banned. */
  lastBanEnd: number;
}

export interface Ban {
  ip: string;
  /** ms since the epoch */
  since: number;
  until: number;
  /** 1 for the first ban, 2 for the second (twice as long), ... */
  level: number;
  /** The offence that tipped it, or 'manual'. */
  reason: string;
}

/** A ban as the admin API lists it. */
export interface BanInfo {
  ip: string;
  since: string;
  until: string;
  /** Seconds left, rounded up. */
  remaining: number;
  level: number;
  reason: string;
}

export interface BanListOptions {
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number;
  /** Offending addresses tracked at most (LRU). */
  maxTracked?: number;
  /** Active bans at most. */
  maxBans?: number;
}

export class BanList {
  readonly config: BanConfig;
  readonly #allow: BlockList | null;
  readonly #now: () => number;
  readonly #tracked: LRUCache<string, Track>;
  readonly #bans = new Map<string, Ban>();
  readonly #maxBans: number;
  /** Offences reported, by kind (a Map: the kinds are few and named by the code). */
  readonly offences = new Map<string, number>();
  /** Offences from addresses in `allow`, or from ones already banned: not counted towards a ban. */
  ignored = 0;
  /** Bans ever started (automatic and manual). */
  total = 0;
  lifted = 0;
  /** Bans that ran out. */
  expired = 0;
  /** Bans dropped because maxBans was reached. */
  evicted = 0;

  constructor(config: BanConfig, opts: BanListOptions = {}) {
    this.config = config;
    this.#allow = config.allow.length > 0 ? blockListOf(config.allow) : null;
    this.#now = opts.now ?? Date.now;
    this.#tracked = new LRUCache<string, Track>({ max: opts.maxTracked ?? 100_000 });
    this.#maxBans = opts.maxBans ?? 100_000;
  }

  /** Whether `ip` is banned now. Cheap when nobody is: one Map size check. */
  isBanned(ip: string): boolean {
    if (this.#bans.size === 0) return false;
    const b = this.#bans.get(ip);
    if (b === undefined) return false;
    const now = this.#now();
    if (b.until > now) return true;
    this.#end(b, b.until);
    this.expired++;
    return false;
  }

  /**
   * Records one offence by `ip`. Returns the ban it started, or null. Offences of an address that
   * is banned already (its refusals are not offences) or allowed are ignored.
   */
  offence(ip: string, kind: OffenceKind): Ban | null {
    if (ip === '') return null;
    this.offences.set(kind, (this.offences.get(kind) ?? 0) + 1);
    if (this.isBanned(ip) || this.allowed(ip)) {
      this.ignored++;
      return null;
    }
    const now = this.#now();
    const window = this.config.window;
    let t = this.#tracked.get(ip);
    if (t === undefined) {
      t = { start: now, cur: 0, prev: 0, level: 0, lastBanEnd: 0 };
      this.#tracked.set(ip, t);
    } else if (now - t.start >= window) {
      // Slide: the current window becomes the previous one (or both are forgotten after two windows).
      const windows = Math.floor((now - t.start) / window);
      t.prev = windows === 1 ? t.cur : 0;
      t.cur = 0;
      t.start += windows * window;
    }
    t.cur++;
    const overlap = 1 - (now - t.start) / window;
    const count = t.cur + t.prev * overlap;
    if (count + 1e-9 < this.config.after) return null;
    return this.#ban(ip, t, now, kind, undefined);
  }

  /** Bans `ip` now (the admin API): for `ms`, or for what its next automatic ban would last. */
  ban(ip: string, ms?: number, reason = 'manual'): Ban {
    const now = this.#now();
    let t = this.#tracked.get(ip);
    if (t === undefined) {
      t = { start: now, cur: 0, prev: 0, level: 0, lastBanEnd: 0 };
      this.#tracked.set(ip, t);
    }
    const old = this.#bans.get(ip);
    if (old !== undefined) this.#bans.delete(ip);
    return this.#ban(ip, t, now, reason, ms);
  }

  /** Ends the ban of `ip` now; false when it was not banned. Its next ban still doubles. */
  lift(ip: string): boolean {
    const b = this.#bans.get(ip);
    if (b === undefined) return false;
    const now = this.#now();
    if (b.until <= now) {
      this.#end(b, b.until);
      this.expired++;
      return false;
    }
    this.#end(b, now);
    this.lifted++;
    return true;
  }

  /** The active bans, the longest-standing first. */
  list(): BanInfo[] {
    const now = this.#now();
    const out: BanInfo[] = [];
    for (const b of [...this.#bans.values()]) {
      if (b.until <= now) {
        this.#end(b, b.until);
        this.expired++;
        continue;
      }
      out.push({
        ip: b.ip,
        since: new Date(b.since).toISOString(),
        until: new Date(b.until).toISOString(),
        remaining: Math.ceil((b.until - now) / 1000),
        level: b.level,
        reason: b.reason,
      });
    }
    return out;
  }

  /** Active bans now (expired ones dropped first). */
  get active(): number {
    const now = this.#now();
    for (const b of [...this.#bans.values()]) {
      if (b.until <= now) {
        this.#end(b, b.until);
        this.expired++;
      }
    }
    return this.#bans.size;
  }

  /** Addresses being tracked for offences (bounded by maxTracked). */
  get tracked(): number {
    return this.#tracked.size;
  }

  allowed(ip: string): boolean {
    if (this.#allow === null) return false;
    try {
      return inList(this.#allow, ip);
    } catch {
      return false;
    }
  }

  #ban(ip: string, t: Track, now: number, reason: string, ms: number | undefined): Ban {
    const cfg = this.config;
    // Good behaviour for maxDuration since the last ban ended: start again from the first length.
    if (t.level > 0 && t.lastBanEnd > 0 && now - t.lastBanEnd >= cfg.maxDuration) t.level = 0;
    const length = ms ?? Math.min(cfg.maxDuration, cfg.duration * 2 ** Math.min(t.level, 40));
    t.level++;
    t.cur = 0;
    t.prev = 0;
    t.start = now;
    const b: Ban = { ip, since: now, until: now + length, level: t.level, reason };
    if (this.#bans.size >= this.#maxBans) this.#makeRoom(now);
    this.#bans.set(ip, b);
    this.total++;
    return b;
  }

  #end(b: Ban, at: number): void {
    this.#bans.delete(b.ip);
    const t = this.#tracked.get(b.ip);
    if (t !== undefined) t.lastBanEnd = at;
  }

  /** Drops expired bans; if none had, the oldest one. */
  #makeRoom(now: number): void {
    for (const b of [...this.#bans.values()]) {
      if (b.until <= now) {
        this.#end(b, b.until);
        this.expired++;
      }
    }
    if (this.#bans.size < this.#maxBans) return;
    const oldest = this.#bans.values().next().value as Ban;
    this.#end(oldest, now);
    this.evicted++;
  }
}
