// Runs bin/gatehouse as a child process (for what only a separate process shows: exit codes,
// signals, memory).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gatehouse');

export interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

export function spawnGatehouse(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  child.stdout?.on('data', (c) => {
    p.stdout += c;
  });
  child.stderr?.on('data', (c) => {
    p.stderr += c;
  });
  return p;
}

/** Runs to completion. */
export async function runGatehouse(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnGatehouse(args, env);
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/** Waits for the "listener NAME: host:port (url)" line and returns the URL. */
export async function listenerUrl(p: Proc, name = 'web', ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  const re = new RegExp(`listener ${name}: \\S+ \\((http://[^)]+)\\)`);
  for (;;) {
    const m = re.exec(p.stderr);
    if (m) return m[1];
    if (p.child.exitCode !== null) throw new Error(`gatehouse exited ${p.child.exitCode}: ${p.stderr}`);
    if (Date.now() > end) throw new Error(`no listener line: ${p.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function configFile(yaml: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-test-'));
  const file = join(dir, 'gatehouse.yaml');
  await writeFile(file, yaml);
  return file;
}
