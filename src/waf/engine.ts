// The WAF engine: the inputs of a request (path, query, headers, cookies, and the first
// inspectBody bytes of a url-encoded, JSON or multipart body) through scan.ts, with anomaly
// scoring (each rule counts once per request), paranoia levels and exclusions. Built once per
// middleware from its config; one Inspection per request.
import type { WafConfig } from '../config/schema.ts';
import { decodeFlags, F_BAD_UTF8, printable } from './decode.ts';
import type { WafMatch } from './events.ts';
import {
  PROTO_ARGS,
  PROTO_BAD_JSON,
  PROTO_BAD_MULTIPART,
  PROTO_BAD_UTF8,
  PROTO_METHOD,
  PROTO_MULTI_CT,
  PROTO_NAME_CTRL,
  RULE_CLASSES,
  RULE_COUNT,
  RULES,
  type RuleClass,
  ruleIndex,
} from './rules.ts';
import { type Hits, type ScanOptions, scanValue } from './scan.ts';

/** Query and form parameters above this count are an anomaly (OWASP CRS's default). */
export const MAX_ARGS = 255;

const COMMON_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Request headers not inspected as values: parsed elsewhere, framing, or secrets. */
const SKIP_HEADERS = new Set([
  'cookie',
  'authorization',
  'proxy-authorization',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'upgrade',
  'accept',
  'accept-encoding',
  'accept-language',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'if-none-match',
  'if-match',
  'x-request-id',
  'traceparent',
  'tracestate',
]);

interface Exclusion {
  /** A rule index, or -1 when `cls` names a whole class. */
  rule: number;
  cls: RuleClass | null;
  paths: readonly string[] | null;
  params: ReadonlySet<string> | null;
}

/** What the head of a request offers the WAF (a RequestContext has all of it). */
export interface HeadInput {
  method: string;
  /** The normalised path. */
  path: string;
  /** The query string with its `?`, or ''. */
  query: string;
  /** Flat [name, value, ...] as received (any case). */
  rawHeaders: readonly string[];
}

/** One request's findings. */
export class Inspection implements Hits {
  score = 0;
  /** Indexes of the rules matched, in order. */
  readonly rules: number[] = [];
  readonly matches: WafMatch[] = [];
  /** The body was inspected (a promise was needed); for tests and logs. */
  bodyInspected = false;
  /** The value being scanned (lower-case normalised form) and where it came from. */
  value = '';
  where = '';
  name = '';
  args = 0;
  readonly #seen = new Uint8Array(RULE_COUNT);
  readonly #engine: WafEngine;
  readonly #exclusions: readonly Exclusion[];

  constructor(engine: WafEngine, exclusions: readonly Exclusion[]) {
    this.#engine = engine;
    this.#exclusions = exclusions;
  }

  hit(rule: number, start: number, end: number): void {
    if (this.#seen[rule] !== 0) return;
    const r = RULES[rule];
    if (r.paranoia > this.#engine.paranoia) return;
    for (const e of this.#exclusions) {
      if ((e.rule === rule || e.cls === r.cls) && (e.params === null || e.params.has(this.name))) return;
    }
    this.#seen[rule] = 1;
    this.score += r.score;
    this.rules.push(rule);
    this.matches.push({
      rule: r.id,
      cls: r.cls,
      where: this.where,
      name: this.name,
      // from where the rule matched, with what follows (64 characters at most)
      matched: printable(this.value.slice(Math.max(0, start), Math.max(end, start + 65))),
    });
  }

  /** Whether the score has reached the threshold. */
  get over(): boolean {
    return this.score >= this.#engine.threshold;
  }
}

/** Media types whose bodies the engine parses. */
export type BodyKind = 'form' | 'json' | 'multipart' | null;

export function bodyKind(contentType: string | undefined): BodyKind {
  if (contentType === undefined) return null;
  const semi = contentType.indexOf(';');
  const t = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (t === 'application/x-www-form-urlencoded') return 'form';
  if (t === 'application/json' || (t.startsWith('application/') && t.endsWith('+json'))) return 'json';
  if (t === 'multipart/form-data') return 'multipart';
  return null;
}

export class WafEngine {
  readonly mode: 'block' | 'detect';
  readonly paranoia: number;
  readonly threshold: number;
  readonly inspectBody: number;
  readonly #exclusions: Exclusion[];
  readonly #opts: ScanOptions;
  readonly #plain: ScanOptions;

  constructor(config: WafConfig) {
    this.mode = config.mode;
    this.paranoia = config.paranoia;
    this.threshold = config.threshold;
    this.inspectBody = config.inspectBody;
    this.#exclusions = config.exclusions.map((x) => {
      const cls = (RULE_CLASSES as readonly string[]).includes(x.rule) ? (x.rule as RuleClass) : null;
      const rule = cls === null ? ruleIndex(x.rule) : -1;
      if (cls === null && rule < 0) throw new Error(`waf exclusion: no rule or class "${x.rule}"`);
      return {
        rule,
        cls,
        paths: x.paths && x.paths.length > 0 ? x.paths : null,
        params: x.parameters && x.parameters.length > 0 ? new Set(x.parameters) : null,
      };
    });
    this.#opts = { paranoia: this.paranoia, plus: true, crlf: true };
    this.#plain = { paranoia: this.paranoia, plus: false, crlf: true };
  }

  /** A fresh inspection for a request on `path` (the exclusions whose paths match it apply). */
  start(path: string): Inspection {
    let active: Exclusion[] | null = null;
    for (const e of this.#exclusions) {
      if (e.paths !== null && !e.paths.some((p) => underPrefix(path, p))) continue;
      active ??= [];
      active.push(e);
    }
    return new Inspection(this, active ?? NONE);
  }

  #scan(st: Inspection, raw: string, where: string, name: string, opts: ScanOptions): string {
    st.where = where;
    st.name = name;
    return scanValue(raw, opts, st);
  }

  /** Path, query, headers, cookies and method. Stops early once blocking is certain. */
  inspectHead(st: Inspection, head: HeadInput): void {
    const pl = this.paranoia;
    if (pl >= 2 && !COMMON_METHODS.has(head.method)) {
      st.where = 'method';
      st.name = '';
      st.value = head.method.toLowerCase();
      st.hit(PROTO_METHOD, 0, head.method.length);
    }
    // the path
    this.#scan(st, head.path, 'path', '', this.#plain);
    if ((decodeFlags & F_BAD_UTF8) !== 0) st.hit(PROTO_BAD_UTF8, 0, Math.min(64, st.value.length));
    if (this.#stop(st)) return;
    // the query
    if (head.query.length > 1) this.#params(st, head.query, 1, 'query');
    if (this.#stop(st)) return;
    // headers and cookies
    const raw = head.rawHeaders;
    let contentTypes = 0;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i].toLowerCase();
      if (name.charCodeAt(0) === 58 /* : pseudo-header */) continue;
      if (name === 'content-type') {
        contentTypes++;
        continue;
      }
      if (name === 'cookie') {
        this.#cookies(st, raw[i + 1]);
      } else if (!SKIP_HEADERS.has(name)) {
        this.#scan(st, raw[i + 1], 'header', `header:${name}`, this.#plain);
      }
      if (this.#stop(st)) return;
    }
    if (contentTypes > 1) {
      st.where = 'header';
      st.name = 'header:content-type';
      st.value = '';
      st.hit(PROTO_MULTI_CT, 0, 0);
    }
  }

  /** In block mode, once the threshold is reached nothing more can change the answer. */
  #stop(st: Inspection): boolean {
    return this.mode === 'block' && st.over;
  }

  /** name=value&... from `from` (1 to skip a `?`). */
  #params(st: Inspection, text: string, from: number, where: string): void {
    let i = from;
    const len = text.length;
    while (i <= len) {
      let amp = text.indexOf('&', i);
      if (amp < 0) amp = len;
      if (amp > i) {
        st.args++;
        const eq = text.indexOf('=', i);
        const nameEnd = eq >= 0 && eq < amp ? eq : amp;
        const rawName = text.slice(i, nameEnd);
        const name = this.#name(st, rawName, where, true);
        if (eq >= 0 && eq < amp) this.#scan(st, text.slice(eq + 1, amp), where, name, this.#opts);
        if (this.#stop(st)) return;
      }
      i = amp + 1;
    }
    if (st.args > MAX_ARGS) {
      st.where = where;
      st.name = '';
      st.value = '';
      st.hit(PROTO_ARGS, 0, 0);
    }
  }

  /** Scans a parameter name as a value too (attacks travel in names) and returns it decoded. */
  #name(st: Inspection, rawName: string, where: string, plus: boolean): string {
    if (rawName === '') return '';
    // The name's own decoded form (for exclusions), case kept
    st.where = where;
    st.name = rawName;
    const lower = scanValue(rawName, plus ? this.#opts : this.#plain, st);
    const decoded = decodeName(rawName, plus);
    for (let k = 0; k < decoded.length; k++) {
      const c = decoded.charCodeAt(k);
      if (c < 0x20 || c === 0x7f) {
        st.name = decoded;
        st.value = lower;
        st.hit(PROTO_NAME_CTRL, 0, Math.min(lower.length, 64));
        break;
      }
    }
    return decoded;
  }

  #cookies(st: Inspection, header: string): void {
    let i = 0;
    const len = header.length;
    while (i < len) {
      let semi = header.indexOf(';', i);
      if (semi < 0) semi = len;
      const eq = header.indexOf('=', i);
      if (eq > i && eq < semi) {
        const name = header.slice(i, eq).trim();
        let value = header.slice(eq + 1, semi).trim();
        if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34)
          value = value.slice(1, -1);
        this.#scan(st, value, 'cookie', `cookie:${name}`, this.#plain);
        if (this.#stop(st)) return;
      }
      i = semi + 1;
    }
  }

  /**
   * The start of a body: `body` holds its first bytes (at most inspectBody are read), `complete`
   * whether that is all of it.
   */
  inspectBodyBytes(st: Inspection, body: Buffer, complete: boolean, contentType: string): void {
    st.bodyInspected = true;
    const kind = bodyKind(contentType);
    const limit = this.inspectBody;
    const whole = complete && body.length <= limit;
    const bytes = body.length > limit ? body.subarray(0, limit) : body;
    if (kind === 'form') this.#params(st, bytes.toString('latin1'), 0, 'body');
    else if (kind === 'json') this.#json(st, bytes.toString('utf8'), whole);
    else if (kind === 'multipart') this.#multipart(st, bytes, contentType, whole);
  }

  /**
   * Every string of a JSON text, keys included, named by the innermost key (array items by their
   * array's key). A hand-written scanner, so that a body cut at inspectBody is still read up to the
   * cut, and nothing is built but the strings.
   */
  #json(st: Inspection, text: string, whole: boolean): void {
    const len = text.length;
    const names: string[] = [''];
    let depth = 0;
    let broken = false;
    let i = 0;
    while (i < len) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        const [value, end] = jsonString(text, i);
        i = end;
        let k = i;
        while (k < len && jsonSpace(text.charCodeAt(k))) k++;
        if (text.charCodeAt(k) === 58 /* : a key */) {
          names[depth] = value;
          this.#scan(st, value, 'json', value, this.#plain);
          i = k + 1;
        } else {
          this.#scan(st, value, 'json', names[depth] ?? '', this.#plain);
        }
        if (this.#stop(st)) return;
        continue;
      }
      if (c === 123 || c === 91) {
        const inherit = names[depth] ?? '';
        depth++;
        names[depth] = inherit;
        if (depth > 512) return; // deeper than any real document; what was read has been scanned
      } else if (c === 125 || c === 93) {
        depth--;
        if (depth < 0) {
          broken = true;
          depth = 0;
        }
      } else if (
        !jsonSpace(c) &&
        c !== 44 &&
        c !== 58 &&
        !(c >= 48 && c <= 57) &&
        c !== 45 &&
        c !== 43 &&
        c !== 46 &&
        !(c >= 97 && c <= 122) &&
        !(c >= 65 && c <= 90)
      ) {
        broken = true;
      }
      i++;
    }
    if (whole && (broken || depth !== 0)) {
      st.where = 'body';
      st.name = '';
      st.value = '';
      st.hit(PROTO_BAD_JSON, 0, 0);
    }
  }

  #multipart(st: Inspection, body: Buffer, contentType: string, whole: boolean): void {
    const boundary = boundaryOf(contentType);
    const fail = () => {
      st.where = 'body';
      st.name = '';
      st.value = '';
      st.hit(PROTO_BAD_MULTIPART, 0, 0);
    };
    if (boundary === null) return fail();
    const delim = Buffer.from(`--${boundary}`, 'latin1');
    let at = 0;
    // leading CRLFs only (a preamble is allowed by RFC 2046 but is how parsers are told apart)
    while (at + 1 < body.length && body[at] === 13 && body[at + 1] === 10) at += 2;
    if (body.length - at < delim.length) {
      if (whole) fail();
      return;
    }
    if (body.compare(delim, 0, delim.length, at, at + delim.length) !== 0) return fail();
    const sep = Buffer.from(`\r\n--${boundary}`, 'latin1');
    let pos = at + delim.length;
    for (;;) {
      // after a delimiter: `--` (the end) or CRLF and a part
      if (body[pos] === 45 && body[pos + 1] === 45) return;
      if (pos + 2 > body.length) return;
      if (body[pos] !== 13 || body[pos + 1] !== 10) return fail();
      const headStart = pos + 2;
      const headEnd = body.indexOf('\r\n\r\n', headStart, 'latin1');
      if (headEnd < 0) {
        if (whole) fail();
        return;
      }
      const head = body.toString('utf8', headStart, headEnd);
      const { name, filename } = disposition(head);
      const contentStart = headEnd + 4;
      let contentEnd = body.indexOf(sep, contentStart);
      const last = contentEnd < 0;
      if (last) {
        if (whole) return fail();
        contentEnd = body.length;
      }
      st.args++;
      const fieldName = name === null ? '' : this.#name(st, name, 'multipart', false);
      if (filename !== null) {
        this.#scan(st, filename, 'file', fieldName, this.#plain);
      } else {
        this.#scan(st, body.toString('utf8', contentStart, contentEnd), 'multipart', fieldName, this.#plain);
      }
      if (this.#stop(st) || last) return;
      pos = contentEnd + sep.length;
      if (st.args > MAX_ARGS) {
        st.where = 'multipart';
        st.name = '';
        st.value = '';
        st.hit(PROTO_ARGS, 0, 0);
        return;
      }
    }
  }
}

const NONE: readonly Exclusion[] = [];

/** `/admin` covers /admin and /admin/..., not /administrator; `/admin/` covers what starts with it. */
function underPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || prefix.endsWith('/') || path.charCodeAt(prefix.length) === 47;
}

function decodeName(raw: string, plus: boolean): string {
  if (raw.indexOf('%') < 0 && !(plus && raw.indexOf('+') >= 0)) return raw;
  try {
    return decodeURIComponent(plus ? raw.split('+').join(' ') : raw);
  } catch {
    return raw;
  }
}

function jsonSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/** The JSON string starting at `i` (its quote), unescaped, and the index after it (or the end). */
function jsonString(text: string, i: number): [string, number] {
  const len = text.length;
  let out = '';
  let last = i + 1;
  let j = i + 1;
  while (j < len) {
    const c = text.charCodeAt(j);
    if (c === 34) return [out + text.slice(last, j), j + 1];
    if (c === 92) {
      out += text.slice(last, j);
      const e = text.charCodeAt(j + 1);
      switch (e) {
        case 110:
          out += '\n';
          break;
        case 114:
          out += '\r';
          break;
        case 116:
          out += '\t';
          break;
        case 98:
          out += '\b';
          break;
        case 102:
          out += '\f';
          break;
        case 117: {
          let h = 0;
          let k = 0;
          for (; k < 4; k++) {
            const d = text.charCodeAt(j + 2 + k);
            const v =
              d >= 48 && d <= 57 ? d - 48 : (d | 0x20) >= 97 && (d | 0x20) <= 102 ? (d | 0x20) - 87 : -1;
            if (v < 0) break;
            h = h * 16 + v;
          }
          if (k === 4) {
            out += String.fromCharCode(h);
            j += 4;
          }
          break;
        }
        default:
          if (j + 1 < len) out += text[j + 1];
      }
      j += 2;
      last = j;
      continue;
    }
    j++;
  }
  return [out + text.slice(last, Math.min(j, len)), len];
}

function boundaryOf(contentType: string): string | null {
  const lower = contentType.toLowerCase();
  const k = lower.indexOf('boundary=');
  if (k < 0) return null;
  let v = contentType.slice(k + 9);
  const semi = v.indexOf(';');
  if (semi >= 0) v = v.slice(0, semi);
  v = v.trim();
  if (v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34) v = v.slice(1, -1);
  if (v.length === 0 || v.length > 200) return null;
  return v;
}

/** name and filename from a part's Content-Disposition (the first header block of the part). */
function disposition(head: string): { name: string | null; filename: string | null } {
  let name: string | null = null;
  let filename: string | null = null;
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.slice(0, colon).trim().toLowerCase() !== 'content-disposition') continue;
    for (const param of splitParams(line.slice(colon + 1))) {
      const eq = param.indexOf('=');
      if (eq < 0) continue;
      const key = param.slice(0, eq).trim().toLowerCase();
      let value = param.slice(eq + 1).trim();
      if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34)
        value = unquote(value.slice(1, -1));
      if (key === 'name') name = value;
      else if (key === 'filename' || key === 'filename*') filename = value;
    }
  }
  return { name, filename };
}

/** A quoted-string's content: `\x` is `x`. */
function unquote(v: string): string {
  if (v.indexOf('\\') < 0) return v;
  let out = '';
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) === 92 && i + 1 < v.length) i++;
    out += v[i];
  }
  return out;
}

/** `a=1; b="x;y"` → ['a=1', 'b="x;y"'] (semicolons inside quotes kept). */
function splitParams(s: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 && s.charCodeAt(i - 1) !== 92) quoted = !quoted;
    else if (c === 59 && !quoted) {
      out.push(s.slice(last, i));
      last = i + 1;
    }
  }
  out.push(s.slice(last));
  return out;
}
