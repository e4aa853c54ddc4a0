// A small buffered JSON-lines writer, as nginx's `access_log ... buffer= flush=`: lines are kept
// for up to FLUSH_MS or MAX_BUFFER bytes and written in one go. A file is written synchronously
// (it goes to the page cache; a synchronous write is cheaper than handing every batch to libuv's
// thread pool, which shares the proxy's core); stdout and stderr go through Node's own streams.
// A file is reopened on reopen() (SIGUSR1, after logrotate moved it); what is buffered is written
// on close() and on exit.
import { closeSync, openSync, writeSync } from 'node:fs';
import { authUser } from '../auth/common.ts';
import type { RequestContext } from '../pipeline/context.ts';

const MAX_BUFFER = 64 * 1024;
const FLUSH_MS = 100;

/** Where access-log lines go. */
export interface LogSink {
  write(line: string): void;
  reopen(): void;
  close(): void;
}

/** Keeps lines in memory (tests, and anything that wants to read the log in process). */
export class MemorySink implements LogSink {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
  reopen(): void {}
  close(): void {}
  /** The lines parsed as JSON. */
  entries(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l));
  }
}

export class LineWriter implements LogSink {
  readonly target: string;
  #fd: number;
  #stream: NodeJS.WriteStream | null;
  #buf: string[] = [];
  #size = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #onExit = () => this.flush();

  constructor(target: string) {
    this.target = target;
    this.#stream = target === 'stdout' ? process.stdout : target === 'stderr' ? process.stderr : null;
    this.#fd = this.#stream === null ? openSync(target, 'a') : -1;
    process.on('exit', this.#onExit);
  }

  write(line: string): void {
    this.#buf.push(line);
    this.#size += line.length;
    if (this.#size >= MAX_BUFFER) this.flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Writes everything buffered now. */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#buf.length === 0) return;
    const data = this.#buf.length === 1 ? this.#buf[0] : this.#buf.join('');
    this.#buf = [];
    this.#size = 0;
    try {
      if (this.#stream !== null) this.#stream.write(data);
      else writeSync(this.#fd, data);
    } catch {
      // A full disk or a closed stdout must not take the proxy down; the lines are lost.
    }
  }

  reopen(): void {
    if (this.#stream !== null) return;
    this.flush();
    const old = this.#fd;
    this.#fd = openSync(this.target, 'a');
    closeSync(old);
  }

  close(): void {
    this.flush();
    process.off('exit', this.#onExit);
    if (this.#stream === null && this.#fd >= 0) {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }
}

// Only `"`, `\` and control characters need escaping in JSON; most strings have none of them.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u2028\u2029\ud800-\udfff]/;

/** A JSON string literal, without JSON.stringify's cost for the common case. */
export function q(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

let stampSecond = -1;
let stampPrefix = '';

/** `2026-11-23T09:17:02.123Z`, formatting the part up to the second only once per second. */
export function isoNow(ms = Date.now()): string {
  const second = Math.floor(ms / 1000);
  if (second !== stampSecond) {
    stampSecond = second;
    stampPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const frac = ms - second * 1000;
  return `${stampPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}

/** Milliseconds to two decimals, as a JSON number (cheaper than toFixed). */
function hundredths(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** One JSON line per request (the default format and fields). The query string is left out: it often carries tokens. */
export function accessLine(ctx: RequestContext, now: number): string {
  const route = ctx.route;
  const err = ctx.error;
  return (
    `{"time":"${isoNow()}","requestId":${q(ctx.id)},"listener":${q(ctx.listener)}` +
    `,"clientIp":"${ctx.clientIp}","method":${q(ctx.req.method ?? '')},"host":${q(ctx.host)}` +
    `,"path":${q(ctx.path)},"protocol":"HTTP/${ctx.req.httpVersion}","status":${ctx.status},"bytes":${ctx.bytesOut}` +
    `,"route":${route ? q(route.name) : 'null'},"upstream":${route ? q(backendOf(ctx)) : 'null'}` +
    `,"target":${ctx.target ? q(ctx.target.id) : 'null'},"attempts":${ctx.attempts}` +
    `,"upstreamMs":${ctx.upstreamMs < 0 ? 'null' : hundredths(ctx.upstreamMs)},"durationMs":${hundredths(now - ctx.start)}` +
    `${ctx.trace !== null ? `,"traceId":"${ctx.trace.traceId}"` : ''}` +
    `${err ? `,"reason":"${err.reason}"` : ''}${userField(ctx)}}\n`
  );
}

const header = (ctx: RequestContext, name: string): string => {
  const v = ctx.req.headers[name];
  return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
};

/** Every field a line can have: its JSON value, or its text (for templates). */
export const FIELDS = {
  time: { json: () => `"${isoNow()}"`, text: () => isoNow() },
  timeLocal: { json: () => `"${clfTime()}"`, text: () => clfTime() },
  requestId: { json: (c) => q(c.id), text: (c) => c.id },
  traceId: { json: (c) => (c.trace ? `"${c.trace.traceId}"` : 'null'), text: (c) => c.trace?.traceId ?? '-' },
  spanId: { json: (c) => (c.trace ? `"${c.trace.spanId}"` : 'null'), text: (c) => c.trace?.spanId ?? '-' },
  listener: { json: (c) => q(c.listener), text: (c) => c.listener },
  clientIp: { json: (c) => `"${c.clientIp}"`, text: (c) => c.clientIp },
  method: { json: (c) => q(c.req.method ?? ''), text: (c) => c.req.method ?? '' },
  host: { json: (c) => q(c.host), text: (c) => c.host || '-' },
  path: { json: (c) => q(c.path), text: (c) => c.path },
  protocol: { json: (c) => `"HTTP/${c.req.httpVersion}"`, text: (c) => `HTTP/${c.req.httpVersion}` },
  request: {
    json: (c) => q(`${c.req.method} ${c.path} HTTP/${c.req.httpVersion}`),
    text: (c) => `${c.req.method} ${c.path} HTTP/${c.req.httpVersion}`,
  },
  status: { json: (c) => String(c.status), text: (c) => String(c.status) },
  bytes: { json: (c) => String(c.bytesOut), text: (c) => String(c.bytesOut) },
  bytesIn: { json: (c) => String(c.bytesIn), text: (c) => String(c.bytesIn) },
  route: { json: (c) => (c.route ? q(c.route.name) : 'null'), text: (c) => c.route?.name ?? '-' },
  upstream: {
    json: (c) => (c.route ? q(backendOf(c)) : 'null'),
    text: (c) => (c.route ? backendOf(c) : '-'),
  },
  target: { json: (c) => (c.target ? q(c.target.id) : 'null'), text: (c) => c.target?.id ?? '-' },
  attempts: { json: (c) => String(c.attempts), text: (c) => String(c.attempts) },
  upstreamMs: {
    json: (c) => (c.upstreamMs < 0 ? 'null' : String(hundredths(c.upstreamMs))),
    text: (c) => (c.upstreamMs < 0 ? '-' : String(hundredths(c.upstreamMs))),
  },
  durationMs: {
    json: (c, now) => String(hundredths(now - c.start)),
    text: (c, now) => String(hundredths(now - c.start)),
  },
  reason: { json: (c) => (c.error ? `"${c.error.reason}"` : 'null'), text: (c) => c.error?.reason ?? '-' },
  // Who the authentication middlewares let in: the Basic user, the JWT's sub, the API key's name.
  user: {
    json: (c) => {
      const u = authUser(c);
      return u === undefined ? 'null' : q(u);
    },
    text: (c) => {
      const u = authUser(c);
      return u === undefined || u === '' ? '-' : u.replace(/[\s"\\]/g, '_');
    },
  },
  userAgent: { json: (c) => q(header(c, 'user-agent')), text: (c) => header(c, 'user-agent') || '-' },
  referer: { json: (c) => q(header(c, 'referer')), text: (c) => header(c, 'referer') || '-' },
} satisfies Record<
  string,
  { json: (c: RequestContext, now: number) => string; text: (c: RequestContext, now: number) => string }
>;

export type FieldName = keyof typeof FIELDS;

/** nginx's `combined` format (the path without its query: queries often carry tokens). */
export const COMBINED = '$clientIp - $user [$timeLocal] "$request" $status $bytes "$referer" "$userAgent"';

/**
 * The line function for a log config: the default JSON line, JSON with chosen fields, or a text
 * template where `$name` is a field (`combined` is nginx's format).
 */
export function lineFormat(
  format: 'json' | 'combined' | 'template',
  fields: readonly FieldName[] | undefined,
  template: string | undefined,
): (ctx: RequestContext, now: number) => string {
  if (format === 'json') {
    if (fields === undefined) return accessLine;
    const parts = fields.map((f) => [`"${f}":`, FIELDS[f].json] as const);
    return (ctx, now) => {
      let out = '{';
      for (let i = 0; i < parts.length; i++)
        out += (i === 0 ? '' : ',') + parts[i][0] + parts[i][1](ctx, now);
      return `${out}}\n`;
    };
  }
  const tpl = format === 'combined' ? COMBINED : (template ?? COMBINED);
  const pieces: (string | FieldName)[] = [];
  const names: boolean[] = [];
  let last = 0;
  for (const m of tpl.matchAll(/\$([A-Za-z]+)/g)) {
    pieces.push(tpl.slice(last, m.index));
    names.push(false);
    pieces.push(m[1] as FieldName);
    names.push(true);
    last = (m.index ?? 0) + m[0].length;
  }
  pieces.push(tpl.slice(last));
  names.push(false);
  return (ctx, now) => {
    let out = '';
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      // Text fields are quoted by the template; control characters and quotes are escaped as nginx does.
      out += names[i] ? escapeText(FIELDS[p as FieldName].text(ctx, now)) : p;
    }
    return `${out}\n`;
  };
}

const TEXT_ESCAPE = /["\\\u0000-\u001f\u007f]/g;

/** `"`, `\` and control characters as `\xNN`, as nginx escapes log variables. */
function escapeText(s: string): string {
  TEXT_ESCAPE.lastIndex = 0;
  if (!TEXT_ESCAPE.test(s)) return s;
  return s.replace(TEXT_ESCAPE, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let clfSecond = -1;
let clfText = '';

/** `23/Nov/2026:10:55:02 +0000` (Common Log Format time, UTC), formatted once per second. */
function clfTime(ms = Date.now()): string {
  const second = Math.floor(ms / 1000);
  if (second !== clfSecond) {
    clfSecond = second;
    const d = new Date(second * 1000);
    const p = (n: number) => String(n).padStart(2, '0');
    clfText = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  }
  return clfText;
}

/** The upstream a request went to (a split's chosen side), or its route's backend (static, redirect, ...). */
export function backendOf(ctx: RequestContext): string {
  return ctx.upstream?.name ?? ctx.route?.backend ?? '';
}

function userField(ctx: RequestContext): string {
  const u = authUser(ctx);
  return u === undefined ? '' : `,"user":${q(u)}`;
}
