// The comparison behind request mirroring (traffic/mirror.ts): two answers to the same request,
// the client's (from the primary upstream) and the mirror's, compared by status, chosen headers and
// body. Bodies are compared by bytes (the bytes kept, or beyond compare.maxBody a sha256 taken as
// they passed, and the length), or JSON-aware: both parsed,
// object key order ignored, ignored fields dropped, and the first differing JSON path reported.
import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

/** Values shown in a recorded difference are cut to this many characters. */
export const VALUE_LIMIT = 200;

export function truncate(s: string, n = VALUE_LIMIT): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/**
 * What `ignoreJsonFields` says: a plain name (`requestTime`) is ignored at any depth; a dotted
 * path (`meta.took`, or `$.meta.took`) only there, from the top. Arrays are transparent to paths:
 * `items.price` is the price of every element of items.
 */
export interface JsonIgnore {
  readonly names: ReadonlySet<string>;
  readonly paths: readonly (readonly string[])[];
}

export const NO_IGNORE: JsonIgnore = { names: new Set(), paths: [] };

export function jsonIgnore(fields: readonly string[]): JsonIgnore {
  const names = new Set<string>();
  const paths: string[][] = [];
  for (const f of fields) {
    const s = f.startsWith('$.') ? f.slice(2) : f;
    if (s === '') continue;
    if (s.includes('.')) paths.push(s.split('.'));
    else names.add(s);
  }
  return { names, paths };
}

/** The first place two JSON values differ: its path (`$.items[2].price`) and both values, shown. */
export interface JsonDifference {
  path: string;
  primary: string;
  mirror: string;
}

/** Shows a JSON value (or its absence) for a recorded difference, truncated. */
export function showJson(v: unknown): string {
  if (v === undefined) return '(absent)';
  try {
    return truncate(JSON.stringify(v));
  } catch {
    return '(unprintable)';
  }
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function keyPath(path: string, key: string): string {
  return IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

type JsonKind = 'null' | 'array' | 'object' | 'string' | 'number' | 'boolean';

function kindOf(v: unknown): JsonKind {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v as JsonKind;
}

/**
 * Compares two parsed JSON values: object key order ignored, array order significant, ignored
 * fields dropped on both sides. Returns the first difference (depth first, in the primary's key
 * order, then keys only the mirror has), or null when they are the same.
 */
export function jsonDiff(a: unknown, b: unknown, ignore: JsonIgnore = NO_IGNORE): JsonDifference | null {
  return walk(a, b, '$', ignore, ignore.paths, 0);
}

function walk(
  a: unknown,
  b: unknown,
  path: string,
  ignore: JsonIgnore,
  live: readonly (readonly string[])[],
  depth: number,
): JsonDifference | null {
  if (a === b) return null;
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka !== kb || (ka !== 'array' && ka !== 'object')) {
    return { path, primary: showJson(a), mirror: showJson(b) };
  }
  if (ka === 'array') {
    const x = a as unknown[];
    const y = b as unknown[];
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) {
      const d = walk(x[i], y[i], `${path}[${i}]`, ignore, live, depth);
      if (d !== null) return d;
    }
    if (x.length !== y.length)
      return { path: `${path}[${n}]`, primary: showJson(x[n]), mirror: showJson(y[n]) };
    return null;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const k of Object.keys(x)) {
    const next = childPaths(k, ignore, live, depth);
    if (next === null) continue;
    const p = keyPath(path, k);
    if (!Object.hasOwn(y, k)) return { path: p, primary: showJson(x[k]), mirror: '(absent)' };
    const d = walk(x[k], y[k], p, ignore, next, depth + 1);
    if (d !== null) return d;
  }
  for (const k of Object.keys(y)) {
    if (Object.hasOwn(x, k)) continue;
    if (childPaths(k, ignore, live, depth) === null) continue;
    return { path: keyPath(path, k), primary: '(absent)', mirror: showJson(y[k]) };
  }
  return null;
}

const NONE: readonly (readonly string[])[] = [];

/** The dotted paths still matching below key `k` at `depth`; null when `k` itself is ignored. */
function childPaths(
  k: string,
  ignore: JsonIgnore,
  live: readonly (readonly string[])[],
  depth: number,
): readonly (readonly string[])[] | null {
  if (ignore.names.has(k)) return null;
  if (live.length === 0) return NONE;
  let next: (readonly string[])[] | null = null;
  for (const p of live) {
    if (p[depth] !== k) continue;
    if (p.length === depth + 1) return null;
    next ??= [];
    next.push(p);
  }
  return next ?? NONE;
}

/** One answer's body as captured: its sha256 and length, and its bytes when within compare.maxBody. */
export interface BodyCapture {
  length: number;
  /** The whole body; null: longer than compare.maxBody (compared by sha256 and length only). */
  bytes: Buffer | null;
  /** sha256, hex, of a body not kept (`bytes` null); null when the bytes are kept. */
  hash: string | null;
  /** Content-Encoding, lower case, '' without. */
  encoding: string;
}

/** A body difference: what to record. */
export interface BodyDifference {
  detail: string;
  primary: string;
  mirror: string;
}

export type BodyMode = 'hash' | 'json' | 'none';

/**
 * Compares two bodies. `json`: when both parse as JSON (after undoing gzip, deflate or br, within
 * `maxBody`), by value with `ignore`; otherwise, and for `hash`, byte for byte by sha256 and length.
 */
export function bodyDiff(
  mode: BodyMode,
  primary: BodyCapture,
  mirror: BodyCapture,
  ignore: JsonIgnore,
  maxBody: number,
): BodyDifference | null {
  if (mode === 'none') return null;
  if (mode === 'json') {
    const a = parseJson(primary, maxBody);
    const b = a === FAILED ? FAILED : parseJson(mirror, maxBody);
    if (a !== FAILED && b !== FAILED) {
      let d: JsonDifference | null;
      try {
        d = jsonDiff(a, b, ignore);
      } catch {
        return bytesDiff(primary, mirror); // nested too deeply to walk
      }
      return d === null
        ? null
        : { detail: `JSON differs at ${d.path}`, primary: d.primary, mirror: d.mirror };
    }
  }
  return bytesDiff(primary, mirror);
}

function bytesDiff(primary: BodyCapture, mirror: BodyCapture): BodyDifference | null {
  if (primary.length !== mirror.length) {
    const detail = `body length ${primary.length} vs ${mirror.length} bytes`;
    return { detail, primary: preview(primary), mirror: preview(mirror) };
  }
  if (primary.bytes !== null && mirror.bytes !== null) {
    if (primary.bytes.equals(mirror.bytes)) return null;
  } else if (sha256(primary) === sha256(mirror)) return null;
  const detail = `body bytes differ (sha256 ${sha256(primary).slice(0, 12)} vs ${sha256(mirror).slice(0, 12)})`;
  return { detail, primary: preview(primary), mirror: preview(mirror) };
}

/** The body's sha256: as hashed while it passed (a body not kept), or of the bytes kept. */
function sha256(c: BodyCapture): string {
  c.hash ??= createHash('sha256')
    .update(c.bytes ?? Buffer.alloc(0))
    .digest('hex');
  return c.hash;
}

/** The start of a body as text (when captured and not encoded), else its hash and length. */
function preview(c: BodyCapture): string {
  if (c.bytes !== null && (c.encoding === '' || c.encoding === 'identity'))
    return truncate(c.bytes.toString('utf8', 0, Math.min(c.bytes.length, VALUE_LIMIT * 4)));
  return `sha256:${sha256(c).slice(0, 16)} (${c.length} bytes)`;
}

const FAILED = Symbol('not JSON');

function parseJson(c: BodyCapture, maxBody: number): unknown {
  if (c.bytes === null || c.bytes.length === 0) return FAILED;
  try {
    const raw = decode(c.bytes, c.encoding, maxBody);
    if (raw === null) return FAILED;
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return FAILED;
  }
}

/** The body with its Content-Encoding undone (at most maxBody bytes out), or null for an unknown one. */
function decode(bytes: Buffer, encoding: string, maxBody: number): Buffer | null {
  const opts = { maxOutputLength: Math.max(1, maxBody) };
  switch (encoding) {
    case '':
    case 'identity':
      return bytes;
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(bytes, opts);
    case 'deflate':
      return inflateSync(bytes, opts);
    case 'br':
      return brotliDecompressSync(bytes, opts);
    default:
      return null;
  }
}
