// Where the WAF reports what it did, for the process log, /metrics and the admin API to read:
// a ring of the most recent blocks and detections, counters by rule class and action and by rule,
// and listeners called for each block or detection. Module-level: one sink per process, shared
// by every waf middleware of every Plan (counters survive reloads, as /metrics expects).
//
// What is kept is already safe to print: the matched part is truncated to 64 characters with
// control characters escaped (decode.ts printable); bodies, Authorization headers and whole
// values are never kept.
import { RULE_CLASSES, RULES, type RuleClass } from './rules.ts';

export type WafAction = 'blocked' | 'detected' | 'scored';
export const WAF_ACTIONS: readonly WafAction[] = ['blocked', 'detected', 'scored'];

export interface WafMatch {
  /** Rule id, e.g. sqli-001. */
  rule: string;
  cls: RuleClass;
  /** Where: path, query, header, cookie, body, json, multipart, file, method, request. */
  where: string;
  /** The parameter, header (header:NAME) or cookie (cookie:NAME) name; '' for the path or the request. */
  name: string;
  /** The matched part of the decoded value, at most 64 characters, control characters escaped. */
  matched: string;
}

export interface WafEvent {
  /** Milliseconds since the epoch. */
  time: number;
  requestId: string;
  /** The middleware's name in the config. */
  middleware: string;
  action: 'blocked' | 'detected';
  score: number;
  method: string;
  /** The request path (normalised), at most 256 characters. */
  path: string;
  clientIp: string;
  matches: WafMatch[];
}

const RING = 256;

class WafEvents {
  readonly #ring: (WafEvent | undefined)[] = new Array(RING);
  #next = 0;
  #total = 0;
  /** [class][action] */
  readonly #byClass = RULE_CLASSES.map(() => WAF_ACTIONS.map(() => 0));
  /** [rule index][action] */
  readonly #byRule = RULES.map(() => WAF_ACTIONS.map(() => 0));
  readonly #listeners: ((e: WafEvent) => void)[] = [];

  /** Counts one request's matches (each rule once) under `action`. */
  count(rules: readonly number[], action: WafAction): void {
    const a = WAF_ACTIONS.indexOf(action);
    for (const r of rules) {
      this.#byRule[r][a]++;
      this.#byClass[RULE_CLASSES.indexOf(RULES[r].cls)][a]++;
    }
  }

  /** Records a block or a detection: kept in the ring and given to each listener. */
  record(e: WafEvent): void {
    this.#ring[this.#next] = e;
    this.#next = (this.#next + 1) % RING;
    this.#total++;
    for (const fn of this.#listeners) {
      try {
        fn(e);
      } catch {
        // a listener's failure is not the request's
      }
    }
  }

  /** The most recent events, newest first (at most `limit`, at most 256 are kept). */
  recent(limit = RING): WafEvent[] {
    const out: WafEvent[] = [];
    for (let k = 1; k <= RING && out.length < limit; k++) {
      const e = this.#ring[(this.#next - k + RING) % RING];
      if (e === undefined) break;
      out.push(e);
    }
    return out;
  }

  /** Events recorded since the process started. */
  get total(): number {
    return this.#total;
  }

  /** Match counts by rule class and action, for gatehouse_waf_matches_total{rule_class, action}. */
  counts(): { rule_class: RuleClass; action: WafAction; value: number }[] {
    const out: { rule_class: RuleClass; action: WafAction; value: number }[] = [];
    RULE_CLASSES.forEach((cls, c) => {
      WAF_ACTIONS.forEach((action, a) => {
        out.push({ rule_class: cls, action, value: this.#byClass[c][a] });
      });
    });
    return out;
  }

  /** Match counts by rule id (those matched at least once). */
  ruleCounts(): { rule: string; action: WafAction; value: number }[] {
    const out: { rule: string; action: WafAction; value: number }[] = [];
    RULES.forEach((r, i) => {
      WAF_ACTIONS.forEach((action, a) => {
        if (this.#byRule[i][a] > 0) out.push({ rule: r.id, action, value: this.#byRule[i][a] });
      });
    });
    return out;
  }

  /** Calls `fn` for every block and detection; returns a function that removes it. */
  onEvent(fn: (e: WafEvent) => void): () => void {
    this.#listeners.push(fn);
    return () => {
      const i = this.#listeners.indexOf(fn);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** Tests only: forget everything. */
  reset(): void {
    this.#ring.fill(undefined);
    this.#next = 0;
    this.#total = 0;
    for (const row of this.#byClass) row.fill(0);
    for (const row of this.#byRule) row.fill(0);
  }
}

export const wafEvents = new WafEvents();

/**
 * The process log line for an event: `waf: blocked <request id> <rule> <matched part>` (the first
 * match; the others follow as `+rule` ids).
 */
export function wafLogLine(e: WafEvent): string {
  const m = e.matches[0];
  const more = e.matches
    .slice(1)
    .map((x) => ` +${x.rule}`)
    .join('');
  const colon = m.name.indexOf(':');
  const bare = m.where === 'header' || m.where === 'cookie' ? m.name.slice(colon + 1) : m.name;
  const where = m.name === '' ? m.where : `${m.where}:${bare}`;
  return `waf: ${e.action} ${e.requestId} ${m.rule} "${m.matched}" in ${where} (score ${e.score})${more}`;
}
