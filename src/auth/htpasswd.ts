// htpasswd files for basicAuth: `user:hash` lines, as Apache's htpasswd writes them. Accepted hashes
// are the slow, salted ones: bcrypt (`$2y$`, `$2b$`, `$2a$`: htpasswd -B), SHA-256-crypt (`$5$`:
// htpasswd -2, openssl passwd -5) and SHA-512-crypt (`$6$`: htpasswd -5, openssl passwd -6). Plain
// text, `{SHA}` (unsalted SHA-1), crypt(3) DES and MD5-crypt (`$apr1$`, `$1$`) are refused: they
// are cheap to brute-force from a leaked file. Blank lines and lines starting with `#` are skipped.
//
// A problem names its line (and the user), never the hash or what may be a plain password.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { parseShaCryptSetting } from './shaCrypt.ts';

export type HashScheme = 'bcrypt' | 'sha256-crypt' | 'sha512-crypt';

export interface HtpasswdUser {
  readonly hash: string;
  readonly scheme: HashScheme;
  /** bcrypt: the cost (log2 of the rounds); SHA-crypt: the rounds. */
  readonly cost: number;
  readonly line: number;
}

export interface HtpasswdProblem {
  readonly line: number;
  readonly message: string;
}

export interface Htpasswd {
  readonly users: ReadonlyMap<string, HtpasswdUser>;
  /** A hash no password matches, of the most common kind and cost in the file: an unknown user costs what a known one does. */
  readonly dummy: string;
}

/** A file larger than this is refused (an htpasswd file of a million bcrypt users is about 70 MB). */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const SHA_CRYPT = /^\$([56])\$(?:rounds=\d{1,10}\$)?[^$]{0,16}\$([./0-9A-Za-z]+)$/;
const B64_CHARS = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Parses the text of an htpasswd file: the users, or every problem found (then no users). */
export function parseHtpasswd(text: string): {
  users: Map<string, HtpasswdUser>;
  problems: HtpasswdProblem[];
} {
  const users = new Map<string, HtpasswdUser>();
  const problems: HtpasswdProblem[] = [];
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const colon = raw.indexOf(':');
    if (colon < 0) {
      problems.push({ line, message: 'expected user:hash' });
      continue;
    }
    const user = raw.slice(0, colon);
    const hash = raw.slice(colon + 1).trim();
    if (user === '') {
      problems.push({ line, message: 'the user name is empty' });
      continue;
    }
    // RFC 7617: no control characters in a user-id (and no colon, which ends it here anyway).
    if (/[\u0000-\u001f\u007f]/.test(user)) {
      problems.push({ line, message: 'the user name has a control character' });
      continue;
    }
    const shown = JSON.stringify(user);
    const kind = classify(hash);
    if (typeof kind === 'string') {
      problems.push({ line, message: `${shown}: ${kind}` });
      continue;
    }
    const seen = users.get(user);
    if (seen !== undefined) {
      problems.push({ line, message: `${shown} is already on line ${seen.line}` });
      continue;
    }
    users.set(user, { hash, scheme: kind.scheme, cost: kind.cost, line });
  }
  if (problems.length === 0 && users.size === 0)
    problems.push({ line: 1, message: 'the file holds no users' });
  if (problems.length > 0) users.clear();
  return { users, problems };
}

/** The scheme and cost of an accepted hash, or why it is refused. */
function classify(hash: string): { scheme: HashScheme; cost: number } | string {
  const fix = 'make it with htpasswd -B (bcrypt) or -5 (SHA-512-crypt)';
  const bc = BCRYPT.exec(hash);
  if (bc !== null) {
    const cost = Number(bc[1]);
    if (cost < 4 || cost > 31) return `bcrypt cost ${cost} is outside 4 … 31`;
    return { scheme: 'bcrypt', cost };
  }
  if (hash.startsWith('$5$') || hash.startsWith('$6$')) {
    const m = SHA_CRYPT.exec(hash);
    const setting = parseShaCryptSetting(hash);
    const length = hash.startsWith('$5$') ? 43 : 86;
    if (m === null || setting === undefined || m[2].length !== length)
      return `malformed ${hash.startsWith('$5$') ? 'SHA-256' : 'SHA-512'}-crypt hash`;
    return { scheme: setting.id === 5 ? 'sha256-crypt' : 'sha512-crypt', cost: setting.rounds };
  }
  if (hash.startsWith('$apr1$') || hash.startsWith('$1$'))
    return `MD5-crypt (${hash.startsWith('$1$') ? '$1$' : '$apr1$'}, htpasswd -m) is refused: it is fast to brute-force; ${fix}`;
  if (hash.startsWith('{SHA}')) return `{SHA} (unsalted SHA-1, htpasswd -s) is refused; ${fix}`;
  if (hash.startsWith('$2')) return `malformed bcrypt hash`;
  if (/^[./0-9A-Za-z]{13}$/.test(hash))
    return `crypt(3) DES (htpasswd -d) is refused: it uses 8 characters of the password; ${fix}`;
  if (hash.startsWith('$')) return `unsupported hash ($${hash.split('$')[1] ?? ''}$); ${fix}`;
  return `a plain-text password (or an unknown hash) is refused; ${fix}`;
}

/** A file's identity and version: inode, size, mtime, ctime (an edit in place or a rename over it changes it). */
export function versionOf(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * Reads and parses the file; throws an Error whose message lists every problem as `path:line: ...`.
 * The version is the stat of the very file read (one descriptor for both).
 */
export function readHtpasswd(path: string): { htpasswd: Htpasswd; version: string } {
  let text: string;
  let version: string;
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a file`);
    if (st.size > MAX_FILE_BYTES) throw new Error(`${path} is larger than ${MAX_FILE_BYTES} bytes`);
    version = versionOf(st);
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  return { htpasswd: fromText(text, path), version };
}

/** Every problem of the file at `path`, each as `path:line: message` (or why it cannot be read); [] when it is good. */
export function htpasswdProblems(path: string): string[] {
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return [`${path} is not a file`];
      if (st.size > MAX_FILE_BYTES) return [`${path} is larger than ${MAX_FILE_BYTES} bytes`];
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    return [`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`];
  }
  return parseHtpasswd(text).problems.map((p) => `${path}:${p.line}: ${p.message}`);
}

/** The parsed file, or an Error listing its problems as `path:line: message`. */
export function fromText(text: string, path: string): Htpasswd {
  const { users, problems } = parseHtpasswd(text);
  if (problems.length > 0) throw new Error(problems.map((p) => `${path}:${p.line}: ${p.message}`).join('; '));
  return { users, dummy: dummyHash(users) };
}

/**
 * A well-formed hash of the most common scheme and cost among `users` (ties: the costlier), with
 * random salt and digest: checking a password against it costs what checking a real user's does,
 * and it matches nothing (the digest is not the result of any computation).
 */
export function dummyHash(users: ReadonlyMap<string, HtpasswdUser>): string {
  const counts = new Map<string, { n: number; scheme: HashScheme; cost: number }>();
  for (const u of users.values()) {
    const k = `${u.scheme}:${u.cost}`;
    const c = counts.get(k);
    if (c) c.n++;
    else counts.set(k, { n: 1, scheme: u.scheme, cost: u.cost });
  }
  let best: { n: number; scheme: HashScheme; cost: number } = { n: 0, scheme: 'bcrypt', cost: 10 };
  for (const c of counts.values()) if (c.n > best.n || (c.n === best.n && c.cost > best.cost)) best = c;
  if (best.scheme === 'bcrypt') return `$2b$${String(best.cost).padStart(2, '0')}$${randomChars(53)}`;
  const id = best.scheme === 'sha256-crypt' ? 5 : 6;
  return `$${id}$rounds=${best.cost}$${randomChars(16)}$${randomChars(id === 5 ? 43 : 86)}`;
}

function randomChars(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += B64_CHARS[bytes[i] & 63];
  return s;
}
