// gatehouse run | validate | explain | schema

import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { compile } from './config/compile.ts';
import { formatError } from './config/load.ts';
import { jsonSchema } from './config/schema.ts';
import { type Validated, validateFile } from './config/validate.ts';
import { Gatehouse, StartError } from './gatehouse.ts';
import { explain } from './routing/explain.ts';
import { runWorkers, workersProblem } from './server/workers.ts';

// User regexes are compiled for V8's linear-time engine (config/units.ts turns it on and refuses
// what it cannot run). This flag is a second guard for every other regex in the process: past
// excessive backtracking V8 switches to that engine where it can.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

const USAGE = `Usage:
  gatehouse run -c gatehouse.yaml [--workers auto|N]
                                                  start serving (N processes sharing the ports)
  gatehouse validate -c gatehouse.yaml            check a config: exit 0, or 1 with every error
  gatehouse explain -c gatehouse.yaml URL [-X METHOD] [-H 'name: value'] [-l LISTENER]
                                                  which route serves URL, and why not the others
  gatehouse schema                                print the config's JSON Schema (for editors)

Signals (run): SIGTERM/SIGINT stop gracefully, SIGHUP reloads the file (keys that need a restart,
such as listeners and limits, keep their running values), SIGUSR1 reopens the access log file.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  let args: ReturnType<typeof parse>;
  const parse = (a: string[]) =>
    parseArgs({
      args: a,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        method: { type: 'string', short: 'X' },
        header: { type: 'string', short: 'H', multiple: true },
        listener: { type: 'string', short: 'l' },
        workers: { type: 'string', short: 'w' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  try {
    args = parse(rest);
  } catch (err) {
    process.stderr.write(`gatehouse: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (command === undefined || command === 'help' || args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === 'schema') {
    process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (command !== 'run' && command !== 'validate' && command !== 'explain') {
    process.stderr.write(`gatehouse: unknown command "${command}"\n\n${USAGE}\n`);
    return 2;
  }
  const file = args.values.config;
  if (!file) {
    process.stderr.write(`gatehouse ${command}: -c FILE is required\n`);
    return 2;
  }
  const v = await validateFile(file);
  if (!v.config) {
    for (const e of v.errors) process.stderr.write(`${formatError(e)}\n`);
    process.stderr.write(`${v.errors.length} error${v.errors.length === 1 ? '' : 's'} in ${file}\n`);
    return 1;
  }
  if (command === 'validate') {
    process.stdout.write(`${summary(v)}\n`);
    return 0;
  }
  if (command === 'explain') {
    const url = args.positionals[0];
    if (!url || !URL.canParse(url)) {
      process.stderr.write('gatehouse explain: give a URL such as http://api.example.com/api/users\n');
      return 2;
    }
    const plan = compile(v.config);
    try {
      const out = explain(
        plan,
        url,
        args.values.method ?? 'GET',
        args.values.header ?? [],
        args.values.listener,
      );
      process.stdout.write(out.text);
      return out.matched ? 0 : 1;
    } finally {
      await plan.close();
    }
  }
  const workers = workerCount(args.values.workers);
  if (workers === undefined) {
    process.stderr.write('gatehouse run: --workers takes auto or a whole number from 1\n');
    return 2;
  }
  if (workers > 1 && process.env.GATEHOUSE_WORKER === undefined) {
    const problem = workersProblem(v.config, workers);
    if (problem) {
      process.stderr.write(`gatehouse: --workers ${workers}: ${problem}\n`);
      return 1;
    }
    return runWorkers(fileURLToPath(import.meta.url), file, workers, (m) =>
      process.stderr.write(`[gatehouse] ${m}\n`),
    );
  }
  return run(file, v, process.env.GATEHOUSE_WORKER !== undefined);
}

function workerCount(value: string | undefined): number | undefined {
  if (value === undefined) return 1;
  if (value === 'auto') return availableParallelism();
  return /^[1-9]\d*$/.test(value) ? Number(value) : undefined;
}

function summary(v: Validated): string {
  const c = v.config as NonNullable<Validated['config']>;
  const n = (k: number, w: string) => `${k} ${w}${k === 1 ? '' : 's'}`;
  return `${v.file}: ok (${n(c.listeners.length, 'listener')}, ${n(c.routes.length, 'route')}, ${n(Object.keys(c.upstreams).length, 'upstream')}, ${n(Object.keys(c.middlewares).length, 'middleware')})`;
}

async function run(file: string, v: Validated, reusePort: boolean): Promise<number> {
  let gh: Gatehouse;
  try {
    gh = await Gatehouse.start(v.config as NonNullable<Validated['config']>, { reusePort });
  } catch (err) {
    if (err instanceof StartError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const say = (m: string) => process.stderr.write(`[gatehouse] ${m}\n`);
  say(`running ${v.file}; stop with Ctrl-C`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        say(`${signal} again: stopping now`);
        process.exit(1);
      }
      stopping = true;
      say(`${signal}: finishing ${gh.inflight} request(s), then stopping`);
      void gh.close().then(() => resolve(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGUSR1', () => gh.reopenLog());
    // Whatever the file holds, a reload never stops the process: anything that goes wrong is
    // logged as "reload refused" and the running config stays.
    process.on('SIGHUP', () => {
      void (async () => {
        try {
          const next = await validateFile(file);
          if (!next.config) {
            for (const e of next.errors) say(`reload refused: ${formatError(e)}`);
            return;
          }
          gh.reload(next.config);
          say(`reloaded ${file}`);
        } catch (err) {
          // e.g. a file the new config names cannot be read.
          say(`reload refused: ${err instanceof Error ? err.message : String(err)}`);
        }
      })();
    });
  });
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
