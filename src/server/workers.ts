// `gatehouse run --workers N`: one supervisor, N worker processes that each bind every listener
// with SO_REUSEPORT (the kernel spreads connections across them), restarted when they crash.
// Signals go to every worker. Worker output is relayed line by line, so access-log lines from
// different workers never interleave mid-line on a shared stdout.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { Config } from '../config/schema.ts';
import { parseAddress } from '../config/units.ts';

/** Why this config cannot run in several processes, or undefined when it can. */
export function workersProblem(config: Config, n: number): string | undefined {
  if (n <= 1) return undefined;
  const port0 = config.listeners.find((l) => parseAddress(l.address)?.port === 0);
  if (port0)
    return `listener ${port0.name}: port 0 picks a different port in every worker; give a fixed port`;
  // store: redis shares one bucket per key across workers (and nodes); memory keeps one per process.
  const limited = Object.entries(config.middlewares).find(
    ([, m]) => m.rateLimit !== undefined && m.rateLimit.store !== 'redis',
  );
  if (limited) {
    return (
      `middleware ${limited[0]}: rateLimit counts per process, so with ${n} workers one client could get ` +
      `up to ${n}x its limit; use store: redis (one bucket per key for every worker and node) or run one worker`
    );
  }
  const disk = Object.entries(config.middlewares).find(([, m]) => m.cache?.store === 'disk');
  if (disk) {
    return (
      `middleware ${disk[0]}: a disk cache's index lives in one process, so ${n} workers would evict ` +
      `each other's files; use store: memory (each worker keeps its own) or run one worker`
    );
  }
  if (config.admin) {
    return (
      `admin: each worker would keep its own figures and only one could bind ${config.admin.address}; ` +
      'run one worker when the admin listener is on, until workers share their figures'
    );
  }
  return undefined;
}

/** Copies complete lines from `from` to `to`, holding back a partial last line. */
function relayLines(from: Readable, to: Writable, prefix = ''): void {
  let rest = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    const text = rest + chunk;
    const end = text.lastIndexOf('\n');
    if (end < 0) {
      rest = text;
      return;
    }
    rest = text.slice(end + 1);
    const lines = text.slice(0, end + 1);
    to.write(prefix === '' ? lines : lines.replace(/^(?=.)/gm, prefix));
  });
  from.on('end', () => {
    if (rest !== '') to.write(`${prefix}${rest}\n`);
  });
}

export async function runWorkers(
  cli: string,
  file: string,
  n: number,
  say: (m: string) => void,
): Promise<number> {
  // One Via pseudonym for the whole node, so loop detection works whichever worker a request meets.
  const via = process.env.GATEHOUSE_VIA ?? `gatehouse-${randomBytes(3).toString('hex')}`;
  const workers = new Map<number, ChildProcess>();
  let stopping = false;
  let failedAtStart = false;
  let restarts = 0;
  let finished: (code: number) => void = () => {};
  const allExited = new Promise<number>((resolve) => {
    finished = resolve;
  });

  const startWorker = (id: number) => {
    const startedAt = Date.now();
    const child = spawn(process.execPath, [cli, 'run', '-c', file], {
      env: { ...process.env, GATEHOUSE_WORKER: String(id), GATEHOUSE_VIA: via },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    workers.set(id, child);
    relayLines(child.stdout as Readable, process.stdout);
    relayLines(child.stderr as Readable, process.stderr, `[worker ${id}] `);
    child.on('exit', (code, signal) => {
      workers.delete(id);
      if (stopping) {
        if (workers.size === 0) finished(failedAtStart ? 1 : 0);
        return;
      }
      if (code === 1 && Date.now() - startedAt < 5000) {
        // It could not start (a port in use, say): the others would fail alike, so stop.
        failedAtStart = true;
        say(`worker ${id} could not start; stopping`);
        stop('SIGTERM');
        return;
      }
      restarts++;
      const delay = Math.min(30_000, 250 * 2 ** Math.min(restarts, 7));
      say(`worker ${id} exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`);
      setTimeout(() => {
        if (!stopping) startWorker(id);
      }, delay).unref();
    });
  };

  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const w of workers.values()) w.kill(signal);
  };

  say(`starting ${n} workers (SO_REUSEPORT)`);
  for (let id = 1; id <= n; id++) startWorker(id);

  const onStop = (signal: NodeJS.Signals) => {
    if (stopping) {
      for (const w of workers.values()) w.kill('SIGKILL');
      return;
    }
    say(`${signal}: stopping ${workers.size} workers`);
    stop(signal);
  };
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  for (const sig of ['SIGHUP', 'SIGUSR1'] as const) {
    process.on(sig, () => {
      for (const w of workers.values()) w.kill(sig);
    });
  }
  return allExited;
}
