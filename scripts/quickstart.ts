// `npm start`: two demo backends, then Gatehouse in front of them with examples/quickstart.yaml.
// Ports: GATEHOUSE_PORT (8080), DEMO_PORT_A (3001), DEMO_PORT_B (3002); 0 picks free ones.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { demoOrigin } from './demo-origin.ts';

const root = join(import.meta.dirname, '..');

async function listen(name: string, port: string): Promise<{ close: () => void; port: number }> {
  const server = demoOrigin(name);
  server.listen(Number(port), '127.0.0.1');
  try {
    await once(server, 'listening');
  } catch (err) {
    process.stderr.write(
      `quickstart: demo ${name} cannot listen on 127.0.0.1:${port}: ${(err as NodeJS.ErrnoException).code}\n`,
    );
    process.exit(1);
  }
  return { close: () => server.close(), port: (server.address() as AddressInfo).port };
}

const a = await listen('backend-a', process.env.DEMO_PORT_A ?? '3001');
const b = await listen('backend-b', process.env.DEMO_PORT_B ?? '3002');
process.stderr.write(`[quickstart] demo backends on 127.0.0.1:${a.port} and 127.0.0.1:${b.port}\n`);
process.stderr.write(
  `[quickstart] open http://127.0.0.1:${process.env.GATEHOUSE_PORT ?? '8080'} (Ctrl-C stops everything)\n`,
);

const child = spawn(
  process.execPath,
  [join(root, 'bin', 'gatehouse'), 'run', '-c', join(root, 'examples', 'quickstart.yaml')],
  {
    stdio: 'inherit',
    env: { ...process.env, DEMO_PORT_A: String(a.port), DEMO_PORT_B: String(b.port) },
  },
);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
const [code] = await once(child, 'exit');
a.close();
b.close();
process.exit(code ?? 0);
