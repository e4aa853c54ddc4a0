// A small buffered JSON-lines writer. Lines written in the same turn of the event loop go out in one
// write; a file sink is reopened on reopen() (SIGUSR1, after logrotate moved it) and everything
// still buffered is written synchronously on exit.
import { closeSync, openSync, write, writeSync } from 'node:fs';
import type { RequestContext } from '../pipeline/context.ts';

const MAX_BUFFER = 256 * 1024;

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
  #ownFd: boolean;
  #buf: string[] = [];
  #size = 0;
  #scheduled = false;
  #writing = false;

  constructor(target: string) {
    this.target = target;
    this.#ownFd = target !== 'stdout' && target !== 'stderr';
    this.#fd = this.#open();
  }

  #open(): number {
    if (this.target === 'stdout') return 1;
    if (this.target === 'stderr') return 2;
    return openSync(this.target, 'a');
  }

  write(line: string): void {
    this.#buf.push(line);
    this.#size += line.length;
    if (this.#size >= MAX_BUFFER) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#writing || this.#buf.length === 0) return;
    const data = this.#buf.join('');
    this.#buf = [];
    this.#size = 0;
    this.#writing = true;
    write(this.#fd, data, (err) => {
      this.#writing = false;
      if (err && (err as NodeJS.ErrnoException).code === 'EAGAIN') this.#buf.unshift(data);
      if (this.#buf.length > 0) this.#flush();
    });
  }

  /** Everything buffered, now (used on exit). */
  flushSync(): void {
    if (this.#buf.length === 0) return;
    const data = this.#buf.join('');
    this.#buf = [];
    this.#size = 0;
    try {
      writeSync(this.#fd, data);
    } catch {
      // stdout closed: nothing more can be said
    }
  }

  reopen(): void {
    if (!this.#ownFd) return;
    this.flushSync();
    const old = this.#fd;
    this.#fd = this.#open();
    // An async write may still hold the old descriptor; close it once that has had time to finish.
    setTimeout(() => closeSync(old), 1000).unref();
  }

  close(): void {
    this.flushSync();
    if (this.#ownFd) closeSync(this.#fd);
  }
}

/** One JSON line per request. The query string is left out: it often carries tokens. */
export function accessLine(ctx: RequestContext, now: number): string {
  const route = ctx.route;
  const err = ctx.error;
  return (
    `{"time":"${new Date().toISOString()}","requestId":${JSON.stringify(ctx.id)},"listener":${JSON.stringify(ctx.listener)}` +
    `,"clientIp":"${ctx.clientIp}","method":${JSON.stringify(ctx.req.method)},"host":${JSON.stringify(ctx.host)}` +
    `,"path":${JSON.stringify(ctx.path)},"protocol":"HTTP/${ctx.req.httpVersion}","status":${ctx.status},"bytes":${ctx.bytesOut}` +
    `,"route":${route ? JSON.stringify(route.name) : 'null'},"upstream":${route ? JSON.stringify(route.upstream.name) : 'null'}` +
    `,"target":${ctx.target ? JSON.stringify(ctx.target.id) : 'null'},"attempts":${ctx.attempts}` +
    `,"upstreamMs":${ctx.upstreamMs < 0 ? 'null' : ctx.upstreamMs.toFixed(2)},"durationMs":${(now - ctx.start).toFixed(2)}` +
    `${err ? `,"reason":"${err.reason}"` : ''}}\n`
  );
}
