// The WAF's corpora (test/fixtures/waf/*.txt) and the measurement both the corpus test and
// docs/waf.md's table come from: each attack payload as a query value on the wire, each benign
// value as a query value and as a JSON field, at paranoia levels 1 to 4.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WafConfig } from '../../src/config/schema.ts';
import { WafEngine } from '../../src/waf/engine.ts';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'waf');

export const CLASSES = ['sqli', 'xss', 'traversal', 'rce'] as const;
export type AttackClass = (typeof CLASSES)[number];

/** Payload lines of a corpus file (`#` lines and blank lines skipped; `@events a b c` expanded). */
export function corpus(file: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync(join(DIR, file), 'utf8').split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    if (line.startsWith('@events ')) {
      for (const ev of line.slice(8).split(' ')) if (ev) out.push(`<xss ${ev}=alert(1)>`);
      continue;
    }
    out.push(line);
  }
  return out;
}

/** A payload as a client would put it in a query string unencoded: only what would break the URL is escaped. */
export function wire(payload: string): string {
  let out = '';
  for (const ch of payload) {
    const c = ch.codePointAt(0) as number;
    if (ch === ' ') out += '%20';
    else if (ch === '&') out += '%26';
    else if (ch === '#') out += '%23';
    else if (c < 0x21 || c > 0x7e) out += encodeURIComponent(ch);
    else out += ch;
  }
  return out;
}

export function engine(paranoia: number, over: Partial<WafConfig> = {}): WafEngine {
  return new WafEngine({
    mode: 'block',
    paranoia,
    threshold: 5,
    inspectBody: 65536,
    exclusions: [],
    ...over,
  });
}

/** The score a query value gets: `raw` is already in wire form. */
export function scoreQuery(e: WafEngine, raw: string): { score: number; rules: string[] } {
  const st = e.start('/search');
  e.inspectHead(st, { method: 'GET', path: '/search', query: `?q=${raw}`, rawHeaders: [] });
  return { score: st.score, rules: st.matches.map((m) => m.rule) };
}

/** The score a JSON body `{"comment": value}` gets. */
export function scoreJson(e: WafEngine, value: string): { score: number; rules: string[] } {
  const st = e.start('/comments');
  e.inspectHead(st, { method: 'POST', path: '/comments', query: '', rawHeaders: [] });
  e.inspectBodyBytes(st, Buffer.from(JSON.stringify({ comment: value })), true, 'application/json');
  return { score: st.score, rules: st.matches.map((m) => m.rule) };
}

export interface Measurement {
  /** [class][paranoia-1] = share detected (0..1) */
  detection: Record<AttackClass, number[]>;
  counts: Record<AttackClass, number>;
  /** [paranoia-1] = share of benign values blocked (query or JSON) */
  falsePositives: number[];
  benign: number;
  /** Benign values blocked at each level, with their rules. */
  misfires: { value: string; rules: string[] }[][];
  /** Attacks missed at paranoia 1. */
  missed: Record<AttackClass, string[]>;
}

export function measure(): Measurement {
  const m: Measurement = {
    detection: { sqli: [], xss: [], traversal: [], rce: [] },
    counts: { sqli: 0, xss: 0, traversal: 0, rce: 0 },
    falsePositives: [],
    benign: 0,
    misfires: [],
    missed: { sqli: [], xss: [], traversal: [], rce: [] },
  };
  const benign = corpus('benign.txt');
  m.benign = benign.length;
  for (let pl = 1; pl <= 4; pl++) {
    const e = engine(pl);
    for (const cls of CLASSES) {
      const list = corpus(`${cls}.txt`);
      m.counts[cls] = list.length;
      let hit = 0;
      for (const p of list) {
        if (scoreQuery(e, wire(p)).score >= 5) hit++;
        else if (pl === 1) m.missed[cls].push(p);
      }
      m.detection[cls].push(hit / list.length);
    }
    const fp: { value: string; rules: string[] }[] = [];
    for (const v of benign) {
      const q = scoreQuery(e, encodeURIComponent(v));
      const j = scoreJson(e, v);
      if (q.score >= 5 || j.score >= 5) fp.push({ value: v, rules: [...new Set([...q.rules, ...j.rules])] });
    }
    m.misfires.push(fp);
    m.falsePositives.push(fp.length / benign.length);
  }
  return m;
}

export function table(m: Measurement): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = ['| class | payloads | PL1 | PL2 | PL3 | PL4 |', '|---|---|---|---|---|---|'];
  for (const cls of CLASSES)
    lines.push(`| ${cls} (detected) | ${m.counts[cls]} | ${m.detection[cls].map(pct).join(' | ')} |`);
  lines.push(`| benign (blocked) | ${m.benign} | ${m.falsePositives.map(pct).join(' | ')} |`);
  return lines.join('\n');
}
