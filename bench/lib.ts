// What the benchmark scripts share: child processes they start (and stop, by PID, on exit), waiting
// for a port to answer, nginx's boilerplate for a config that runs in the foreground from a temp dir.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');
export const PROXY_CORE = '0';
export const LOAD_CORE = '1';
export const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
const children: ChildProcess[] = [];
let stopping = false;

/** Starts a child whose stderr is kept (and printed if it dies on its own); stdout is passed to onOut. */
export function run(cmd: string, args: string[], log: string, onOut?: (text: string) => void): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', onOut ? 'pipe' : 'ignore', 'pipe'], cwd: ROOT });
  let err = '';
  child.stderr?.on('data', (c) => {
    err += c;
    onOut?.(String(c));
  });
  child.stdout?.on('data', (c) => onOut?.(String(c)));
  child.on('exit', (code) => {
    if (code && code !== 0 && !stopping && child.signalCode === null)
      process.stderr.write(`${log} exited ${code}: ${err}\n`);
  });
  children.push(child);
  return child;
}

/** Stops every child this script started that is still running. */
export function stopAll(): void {
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
}
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));

export async function waitFor(port: number, path = '/100b'): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}${path}`);
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing answers 200 on port ${port}`);
}

export const nginxCommon = (name: string) => `daemon off; master_process off; worker_processes 1; user root;
pid ${dir}/${name}.pid; error_log ${dir}/${name}.error.log warn;
events { worker_connections 8192; }`;

export const nginxTemps = (name: string) =>
  ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `${t}_temp_path ${dir}/${name}-${t};`)
    .join(' ');

export function versions(): { node: string; nginx: string; haproxy: string; cpu: string } {
  const sh = (c: string) => execFileSync('sh', ['-c', c], { encoding: 'utf8' }).trim();
  return {
    node: process.versions.node,
    nginx: sh('nginx -v 2>&1').replace('nginx version: ', ''),
    haproxy: sh('haproxy -v | head -1').split(' ')[2],
    cpu: sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
  };
}
