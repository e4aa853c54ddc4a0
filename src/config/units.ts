// Parsing of the string forms the config file uses for durations, sizes and addresses.
// Each parser returns undefined for input it does not accept, so the schema can word the error.

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
