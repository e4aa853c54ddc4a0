// Starts a real Gatehouse in this process from a YAML string, on random ports.
import { formatError } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { validateText } from '../../src/config/validate.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { MemorySink } from '../../src/observe/accessLog.ts';

export interface Running {
  gh: Gatehouse;
  /** Base URL of a listener (the first one by default). */
  url(listener?: string): string;
  log: MemorySink;
  messages: string[];
  close(): Promise<void>;
}

/**
 * A test config from YAML. GATEHOUSE_TEST_ENGINE=node runs the suite on node:http instead of our
 * HTTP/1.1 engine (CI runs the end-to-end tests on both).
 */
export function testConfig(yaml: string): Config {
  const v = validateText(yaml, 'test.yaml');
  if (!v.config) throw new Error(`invalid test config:\n${v.errors.map(formatError).join('\n')}`);
  const engine = process.env.GATEHOUSE_TEST_ENGINE;
  if (engine === 'node' || engine === 'gatehouse') for (const l of v.config.listeners) l.engine = engine;
  return v.config;
}

export async function start(yaml: string): Promise<Running> {
  const v = { config: testConfig(yaml) };
  const log = new MemorySink();
  const messages: string[] = [];
  const gh = await Gatehouse.start(v.config, { accessLog: log, say: (m) => messages.push(m) });
  return {
    gh,
    log,
    messages,
    url(listener?: string) {
      const l = listener ? gh.listeners.find((x) => x.name === listener) : gh.listeners[0];
      if (!l) throw new Error(`no listener ${listener}`);
      return l.url;
    },
    close: () => gh.close(0),
  };
}

/** Waits until `cond()` holds, polling; fails after `ms`. */
export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
