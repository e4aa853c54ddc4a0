// basicAuth's htpasswd file, kept current: read when the Plan compiles (a bad file fails the load),
// then its stat (inode, size, mtime, ctime) polled on an unref'd timer, as geo/geoip.ts does, which
// sees both edits in place and a new file renamed over the old one. A change is read once the stat
// has stayed the same for one poll (a file still being written is not read), parsed, and swapped in
// whole. A file that cannot be read or is invalid keeps the users already loaded, and is reported
// once per version.
import { stat } from 'node:fs/promises';
import { type Htpasswd, readHtpasswd, versionOf } from './htpasswd.ts';

export const POLL_MS = 1000;

export class UsersFile {
  readonly path: string;
  /** Swapped whole: a check sees the old users or the new ones, never a mix. */
  current: Htpasswd;
  #version: string;
  #pending: string | null = null;
  #busy = false;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  readonly #onReload: () => void;
  readonly #onError: (message: string) => void;

  /** Reads the file now; throws with every problem (`path:line: ...`). `watch`: poll it for changes. */
  constructor(path: string, watch: boolean, onReload: () => void, onError: (message: string) => void) {
    this.path = path;
    const { htpasswd, version } = readHtpasswd(path);
    this.current = htpasswd;
    this.#version = version;
    this.#onReload = onReload;
    this.#onError = onError;
    if (watch) {
      this.#timer = setInterval(() => void this.#poll(), POLL_MS);
      this.#timer.unref();
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  async #poll(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    try {
      await this.#check();
    } catch {
      // #check reports what goes wrong; nothing may escape a timer.
    } finally {
      this.#busy = false;
    }
  }

  async #check(): Promise<void> {
    let now: string;
    try {
      now = versionOf(await stat(this.path));
    } catch (err) {
      this.#failed(`error:${(err as NodeJS.ErrnoException).code}`, describe(this.path, err));
      return;
    }
    if (now === this.#version) {
      this.#pending = null;
      return;
    }
    if (now !== this.#pending) {
      this.#pending = now;
      return;
    }
    this.#pending = null;
    if (this.#closed) return;
    let next: { htpasswd: Htpasswd; version: string };
    try {
      // Small and read once per change: the synchronous read keeps stat and content together.
      next = readHtpasswd(this.path);
    } catch (err) {
      this.#failed(now, (err as Error).message);
      return;
    }
    this.#version = next.version;
    this.current = next.htpasswd;
    this.#onReload();
  }

  /** Keeps the users loaded; says why once per file version. */
  #failed(version: string, message: string): void {
    if (this.#closed || this.#version === version) return;
    this.#version = version;
    try {
      this.#onError(`${message}; keeping the users loaded before`);
    } catch {
      // A throwing callback must not stop the polling.
    }
  }
}

function describe(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' ? `${path} is gone` : `cannot read ${path} (${code ?? 'unknown error'})`;
}
