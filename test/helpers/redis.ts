// A real redis-server (Debian package `redis-server`) for the tests that share state through Redis:
// started on a free loopback port in a temporary directory with persistence off, stopped by PID,
// and restartable on the same port (a Redis outage in the middle of a test). Without the program
// the test skips with the reason, except under GATEHOUSE_TEST_REQUIRE_ALL=1 (helpers/require.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from './net.ts';
import { needCommand } from './require.ts';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** One command over a fresh connection (RESP2); the reply decoded (errors as Error values). */
  command(...args: string[]): Promise<unknown>;
  /** SIGKILL, as a crash would; resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that holds connections but answers nothing. */
  pause(): void;
  resume(): void;
  /** Starts it again on the same port (after kill). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A running redis-server, or null when the test was skipped because there is none. `password`:
 * started with requirepass, and the helper's own commands authenticate first.
 */
export async function redisServer(
  t: TestContext,
  opts: { password?: string } = {},
): Promise<RedisServer | null> {
  if (!needCommand(t, 'redis-server', 'the shared rate-limit tests run a real Redis')) return null;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-'));
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(
      'redis-server',
      [
        ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
        ...(opts.password === undefined ? [] : ['--requirepass', opts.password]),
      ],
      { stdio: 'ignore' },
    );
    const end = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      try {
        if ((await command(port, ['PING'], opts.password)) === 'PONG') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > end) throw new Error('redis-server did not answer PING within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = once(child, 'exit');
    child.kill('SIGKILL');
    await gone;
  };
  await launch();
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child.pid as number;
    },
    command: (...args) => command(port, args, opts.password),
    kill,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    restart: launch,
    stop: kill,
  };
  t.after(() => server.stop());
  return server;
}

const resp = (args: string[]) => {
  let text = `*${args.length}\r\n`;
  for (const a of args) text += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return text;
};

/** Sends one command in RESP (after AUTH when `password`) and reads its reply. */
function command(port: number, args: string[], password?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('redis: no reply within 2 s'));
    }, 2000);
    socket.on('connect', () => {
      socket.write((password === undefined ? '' : resp(['AUTH', password])) + resp(args));
    });
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      let r = parse(buf, 0);
      if (r !== null && password !== undefined) r = parse(buf, r.end);
      if (r === null) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(r.value);
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** One RESP2 value at `at`, or null when more bytes are needed. */
function parse(buf: Buffer, at: number): { value: unknown; end: number } | null {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return null;
  const line = buf.toString('utf8', at + 1, eol);
  const type = String.fromCharCode(buf[at]);
  if (type === '+') return { value: line, end: eol + 2 };
  if (type === '-') return { value: new Error(line), end: eol + 2 };
  if (type === ':') return { value: Number(line), end: eol + 2 };
  if (type === '$') {
    const n = Number(line);
    if (n < 0) return { value: null, end: eol + 2 };
    if (buf.length < eol + 2 + n + 2) return null;
    return { value: buf.toString('utf8', eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
  }
  if (type === '*') {
    const n = Number(line);
    if (n < 0) return { value: null, end: eol + 2 };
    const out: unknown[] = [];
    let p = eol + 2;
    for (let i = 0; i < n; i++) {
      const r = parse(buf, p);
      if (r === null) return null;
      out.push(r.value);
      p = r.end;
    }
    return { value: out, end: p };
  }
  throw new Error(`redis: unexpected reply ${JSON.stringify(buf.toString('latin1'))}`);
}
