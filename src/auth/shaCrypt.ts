// SHA-256-crypt ($5$) and SHA-512-crypt ($6$): "Unix crypt using SHA-256 and SHA-512" by Ulrich
// Drepper (the scheme of glibc's crypt(3), `openssl passwd -5/-6`, `htpasswd -2/-5`, `mkpasswd`),
// on node:crypto's hashes. The step numbers below are the specification's.
//
// This is synchronous and costs `rounds` hash computations (5000 by default: a few milliseconds):
// the proxy runs it on its password thread (auth/passwords.ts), never on the event loop.
import { createHash, type Hash } from 'node:crypto';

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const ROUNDS_DEFAULT = 5000;
export const ROUNDS_MIN = 1000;
export const ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;

/** The byte triples of the final digest, in the order the specification encodes them (steps 22e). */
const ORDER_256: readonly (readonly [number, number, number])[] = [
  [0, 10, 20],
  [21, 1, 11],
  [12, 22, 2],
  [3, 13, 23],
  [24, 4, 14],
  [15, 25, 5],
  [6, 16, 26],
  [27, 7, 17],
  [18, 28, 8],
  [9, 19, 29],
];
const ORDER_512: readonly (readonly [number, number, number])[] = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
];

export interface ShaCryptSetting {
  /** 5: SHA-256, 6: SHA-512. */
  readonly id: 5 | 6;
  /** The rounds, clamped to the specification's bounds. */
  readonly rounds: number;
  /** `rounds=` was written in the setting, so it is written in the result too. */
  readonly customRounds: boolean;
  /** At most 16 characters. */
  readonly salt: string;
}

/**
 * Reads a setting or a whole hash (`$6$rounds=N$salt$...`); undefined when it is not SHA-crypt.
 * As the specification says, the salt stops at the first `$` or after 16 characters, and a rounds
 * value outside 1000 … 999,999,999 is clamped into it.
 */
export function parseShaCryptSetting(setting: string): ShaCryptSetting | undefined {
  const m = /^\$([56])\$(?:rounds=(\d{1,10})\$)?([^$]*)/.exec(setting);
  if (m === null) return undefined;
  const id = m[1] === '5' ? 5 : 6;
  const customRounds = m[2] !== undefined;
  let rounds = customRounds ? Number(m[2]) : ROUNDS_DEFAULT;
  if (rounds < ROUNDS_MIN) rounds = ROUNDS_MIN;
  if (rounds > ROUNDS_MAX) rounds = ROUNDS_MAX;
  return { id, rounds, customRounds, salt: m[3].slice(0, SALT_MAX) };
}

/**
 * crypt(password, setting) for `$5$` and `$6$` settings: the full hash string, e.g.
 * `$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5`. The password is taken as UTF-8.
 * Throws on a setting that is not SHA-crypt.
 */
export function shaCrypt(password: string | Buffer, setting: string): string {
  const s = parseShaCryptSetting(setting);
  if (s === undefined) throw new Error('not a SHA-crypt setting ($5$ or $6$)');
  const algorithm = s.id === 5 ? 'sha256' : 'sha512';
  const size = s.id === 5 ? 32 : 64;
  const key = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const salt = Buffer.from(s.salt, 'utf8');
  const hash = (): Hash => createHash(algorithm);

  // Steps 4-8: digest B = H(key salt key).
  const b = hash().update(key).update(salt).update(key).digest();
  // Steps 1-3, 9-12: digest A.
  const a = hash().update(key).update(salt);
  let n = key.length;
  for (; n > size; n -= size) a.update(b);
  a.update(b.subarray(0, n));
  for (let bits = key.length; bits > 0; bits >>= 1) a.update(bits & 1 ? b : key);
  const da = a.digest();
  // Steps 13-16: P, the key's length of bytes from DP = H(key repeated key.length times).
  const dp = hash();
  for (let i = 0; i < key.length; i++) dp.update(key);
  const p = repeatTo(dp.digest(), key.length);
  // Steps 17-20: S, the salt's length of bytes from DS = H(salt repeated 16 + A[0] times).
  const ds = hash();
  for (let i = 0; i < 16 + da[0]; i++) ds.update(salt);
  const sBytes = repeatTo(ds.digest(), salt.length);
  // Step 21: the rounds.
  let c = da;
  for (let i = 0; i < s.rounds; i++) {
    const h = hash();
    h.update(i & 1 ? p : c);
    if (i % 3 !== 0) h.update(sBytes);
    if (i % 7 !== 0) h.update(p);
    h.update(i & 1 ? c : p);
    c = h.digest();
  }
  // Step 22: the result string.
  let out = `$${s.id}$${s.customRounds ? `rounds=${s.rounds}$` : ''}${s.salt}$`;
  for (const [x, y, z] of s.id === 5 ? ORDER_256 : ORDER_512) out += b64(c[x], c[y], c[z], 4);
  out += s.id === 5 ? b64(0, c[31], c[30], 3) : b64(0, 0, c[63], 2);
  return out;
}

/** `length` bytes: `block` repeated, the last copy cut short. */
function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

/** The specification's b64_from_24bit: `n` characters from three bytes, least significant six bits first. */
function b64(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += ALPHABET[w & 0x3f];
    w >>= 6;
  }
  return out;
}
