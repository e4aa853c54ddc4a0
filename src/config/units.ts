// Parsing of the string forms the config file uses for durations, sizes, addresses, CIDRs and
// regular expressions. Each parser returns undefined for input it does not accept (or a reason), so
// the schema can word the error.
import { BlockList, isIP } from 'node:net';
import { setFlagsFromString } from 'node:v8';

// User regexes run on V8's linear-time engine (the `l` flag), so no path or body can make matching
// slow. The flag must be set before the first RegExp with `l` is built: here, at module load, as
// every regex a user writes reaches the process through this module.
setFlagsFromString('--enable-experimental-regexp-engine');
const LINEAR = (() => {
  try {
    // biome-ignore lint/complexity/useRegexLiterals: a literal with the l flag fails to parse when the flag is off
    new RegExp('', 'l');
    return true;
  } catch {
    return false;
  }
})();

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** `500ms`, `5s`, `1.5m`, `2h` → milliseconds. `0` alone means "off" where a key allows it. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const m = DURATION_RE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]]);
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
export const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)$/i;

/** `512b`, `32kb`, `10mb`, `1gb` → bytes (binary multiples, as nginx's `k` and `m`). */
export function parseSize(text: string): number | undefined {
  if (text === '0') return 0;
  const m = SIZE_RE.exec(text.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
}

export interface HostPort {
  host: string;
  port: number;
}

/**
 * `127.0.0.1:8080`, `[::1]:8080`, `:8080` (every interface), `localhost:0` (a random port).
 * Returns the host without brackets.
 */
export function parseAddress(text: string): HostPort | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port };
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** 1500 → `1.5s`, 30000 → `30s`, 300000 → `5m`, 250 → `250ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000 || ms % 60_000 !== 0) return `${Number((ms / 1000).toFixed(1))}s`;
  return `${ms / 60_000}m`;
}

/** An address or CIDR block as node:net takes it. */
export interface Cidr {
  address: string;
  /** 32 or 128 for a single address. */
  prefix: number;
  type: 'ipv4' | 'ipv6';
}

/** `10.0.0.0/8`, `::1`, `2001:db8::/32`, `192.168.1.7` → what BlockList.addSubnet takes; net.isIP and BlockList judge. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return undefined;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  let prefix = family === 4 ? 32 : 128;
  if (slash >= 0) {
    const bits = text.slice(slash + 1);
    // Number() would read '' as 0 and '1e1' as 10; BlockList checks the range.
    if (!/^[0-9]+$/.test(bits)) return undefined;
    prefix = Number(bits);
  }
  try {
    new BlockList().addSubnet(address, prefix, type);
  } catch {
    return undefined;
  }
  return { address, prefix, type };
}

/**
 * Compiles a regex from the config for V8's linear-time engine, the only way user regexes are
 * built (validation and the router both come here). Throws an Error whose message says why a regex
 * is refused: the engine cannot run backreferences, lookaheads, modifier groups such as `(?i:...)`
 * or counted repeats multiplying to more than 16.
 */
export function compileUserRegex(source: string): RegExp {
  if (!LINEAR)
    throw new Error('this Node.js cannot run regular expressions in linear time, so none is accepted');
  try {
    return new RegExp(source, 'l');
  } catch (e) {
    const message = (e as Error).message;
    if (!message.includes('Cannot be executed in linear time'))
      throw new Error(
        `not a valid regular expression: ${message.replace(/^Invalid regular expression: \/.*\/l: /s, '')}`,
      );
    throw new Error(
      `${nonLinearPart(source)} cannot run in linear time (user regexes must, so that no request can make matching slow)`,
    );
  }
}

/** Why `source` is refused as a user regex, or undefined when it is accepted. */
export function userRegexProblem(source: string): string | undefined {
  try {
    compileUserRegex(source);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Names the construct that keeps V8's linear-time engine from taking a regex. */
function nonLinearPart(source: string): string {
  if (/\\[1-9]|\\k</.test(source)) return 'a backreference (\\1, \\k<name>)';
  if (/\(\?[=!]/.test(source)) return 'a lookahead ((?=...), (?!...))';
  if (/\(\?<[=!]/.test(source)) return 'a lookbehind ((?<=...), (?<!...))';
  if (/\(\?([a-z]+(-[a-z]*)?|-[a-z]+):/.test(source)) return 'a modifier group such as (?i:...)';
  if (/\{[0-9]+(,[0-9]*)?\}/.test(source)) return 'a counted repeat ({n} or {n,m}) above 16 in all';
  return 'this expression';
}
