// Password checks off the event loop. A bcrypt check at cost 10 takes ~130 ms of CPU in bcryptjs and
// a SHA-512-crypt check at 5000 rounds ~17 ms (measured here): done on the event loop, every wrong
// password would stall every other request for that long. So checks run on one worker thread,
// shared by every basicAuth middleware of the process (and across reloads), started on first use,
// and holding the process open only while a check is pending.
//
// The queue is bounded: a flood of guesses gets PasswordsBusy (basicAuth answers 503
// auth_unavailable) instead of an ever longer queue that legitimate users would wait behind.
import { Worker } from 'node:worker_threads';

/** Checks waiting or running at most; more are refused at once. */
export const MAX_PENDING = 256;

export class PasswordsBusy extends Error {
  constructor() {
    super('too many password checks pending');
    this.name = 'PasswordsBusy';
  }
}

interface Pending {
  resolve(ok: boolean): void;
  reject(err: Error): void;
}

// From src/ the worker is a .ts file (Node strips its types); from dist/ it is the emitted .js.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './passwordWorker.ts' : './passwordWorker.js',
  import.meta.url,
);

/** Checks started since the process began (figures and tests: a cache hit starts none). */
export const passwordStats = { checks: 0 };

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(err: Error): void {
  const all = [...pending.values()];
  pending.clear();
  for (const p of all) p.reject(err);
}

function startWorker(): Worker {
  const w = new Worker(WORKER_URL, { name: 'gatehouse-passwords' });
  w.on('message', (m: { id: number; ok: boolean }) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    p.resolve(m.ok === true);
  });
  w.on('error', (err) => {
    if (worker === w) worker = null;
    failAll(err instanceof Error ? err : new Error(String(err)));
  });
  w.on('exit', () => {
    if (worker === w) worker = null;
    failAll(new Error('the password thread stopped'));
  });
  w.unref();
  return w;
}

/**
 * Whether `password` matches `hash` (an accepted htpasswd hash), computed on the password thread.
 * Rejects with PasswordsBusy when MAX_PENDING checks are already waiting.
 */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (pending.size >= MAX_PENDING) return Promise.reject(new PasswordsBusy());
  worker ??= startWorker();
  const w = worker;
  passwordStats.checks++;
  const id = nextId++;
  return new Promise<boolean>((resolve, reject) => {
    if (pending.size === 0) w.ref();
    pending.set(id, { resolve, reject });
    w.postMessage({ id, password, hash });
  });
}

/** Checks pending now (for tests and figures). */
export function pendingChecks(): number {
  return pending.size;
}
