// A small buffered JSON-lines writer, as nginx's `access_log ... buffer= flush=`: lines are kept
// for up to FLUSH_MS or MAX_BUFFER bytes and written in one go. A file is written synchronously
// (it goes to the page cache; a synchronous write is cheaper than handing every batch to libuv's
// thread pool, which shares the proxy's core); stdout and stderr go through Node's own streams.
// A file is reopened on reopen() (SIGUSR1, after logrotate moved it); what is buffered is written
// on close() and on exit.
import { closeSync, openSync, writeSync } from 'node:fs';
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

/** One JSON line per request. The query string is left out: it often carries tokens. */
export function accessLine(ctx: RequestContext, now: number): string {
  const route = ctx.route;
  const err = ctx.error;
  return (
    `{"time":"${isoNow()}","requestId":${q(ctx.id)},"listener":${q(ctx.listener)}` +
    `,"clientIp":"${ctx.clientIp}","method":${q(ctx.req.method ?? '')},"host":${q(ctx.host)}` +
    `,"path":${q(ctx.path)},"protocol":"HTTP/${ctx.req.httpVersion}","status":${ctx.status},"bytes":${ctx.bytesOut}` +
    `,"route":${route ? q(route.name) : 'null'},"upstream":${route ? q(route.upstream.name) : 'null'}` +
    `,"target":${ctx.target ? q(ctx.target.id) : 'null'},"attempts":${ctx.attempts}` +
    `,"upstreamMs":${ctx.upstreamMs < 0 ? 'null' : hundredths(ctx.upstreamMs)},"durationMs":${hundredths(now - ctx.start)}` +
    `${err ? `,"reason":"${err.reason}"` : ''}}\n`
  );
}
