// Starts a real Gatehouse in this process from a YAML string, on random ports.
import { formatError } from '../../src/config/load.ts';
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

export async function start(yaml: string): Promise<Running> {
  const v = validateText(yaml, 'test.yaml');
  if (!v.config) throw new Error(`invalid test config:\n${v.errors.map(formatError).join('\n')}`);
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
