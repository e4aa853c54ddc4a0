// What a reload (SIGHUP) changes, read from the schema: a key whose `.meta()` says
// `reload: 'restart'` is bound at start (sockets, the log file, the admin listener, ...), so a
// reload keeps its running value rather than half applying a new one. Every other key is hot:
// the new Plan uses it at once. A key without its own `reload` takes its parent's.
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { type Config, configSchema } from './schema.ts';

export type ReloadClass = 'hot' | 'restart';

/** One key of the schema, as docs/configuration.md names it. */
export interface SchemaKey {
  /** `listeners[].tls.minVersion`, `upstreams.<name>.timeouts.connect`: `[]` is any list item, `<name>` any map key. */
  readonly path: string;
  readonly description: string | undefined;
  /** The key's own class, or the nearest enclosing key's. */
  readonly reload: ReloadClass;
  /** Whether the key says `reload` itself (rather than inheriting it). */
  readonly declared: boolean;
}

interface Def {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  element?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  options?: z.core.$ZodType[];
}

const defOf = (s: z.core.$ZodType): Def => s._zod.def as unknown as Def;
const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'nonoptional', 'readonly', 'catch']);

/** Strips optional/default/transform wrappers, keeping the outermost description and reload class. */
function unwrap(schema: z.core.$ZodType): {
  inner: z.core.$ZodType;
  description?: string;
  reload?: ReloadClass;
} {
  let s = schema;
  let description: string | undefined;
  let reload: ReloadClass | undefined;
  for (;;) {
    const meta = z.globalRegistry.get(s);
    description ??= meta?.description;
    reload ??= meta?.reload;
    const def = defOf(s);
    if (WRAPPERS.has(def.type) && def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else return { inner: s, description, reload };
  }
}

interface Walked {
  keys: SchemaKey[];
  /** Restart-only keys under hot parents, as object paths (`['forwarding', 'via']`). */
  restart: string[][];
}

function walkSchema(): Walked {
  const keys: SchemaKey[] = [];
  const restart: string[][] = [];
  const visit = (
    schema: z.core.$ZodType,
    prefix: string,
    objectPath: string[] | null,
    inherited: ReloadClass,
  ): void => {
    const def = defOf(unwrap(schema).inner);
    if (def.type === 'object' && def.shape) {
      for (const [k, child] of Object.entries(def.shape)) {
        const u = unwrap(child);
        const path = prefix === '' ? k : `${prefix}.${k}`;
        const reload: ReloadClass = inherited === 'restart' ? 'restart' : (u.reload ?? inherited);
        const at = objectPath === null ? null : [...objectPath, k];
        if (reload === 'restart' && inherited === 'hot') {
          // A restart-only key inside a list or map could not be carried over item by item.
          if (at === null)
            throw new Error(`${path}: reload: 'restart' is supported outside lists and maps only`);
          restart.push(at);
        }
        keys.push({ path, description: u.description, reload, declared: u.reload !== undefined });
        visit(u.inner, path, at, reload);
      }
    } else if (def.type === 'array' && def.element) {
      visit(def.element, `${prefix}[]`, null, inherited);
    } else if (def.type === 'record' && def.valueType) {
      visit(def.valueType, `${prefix}.<name>`, null, inherited);
    } else if (def.type === 'union' && def.options) {
      for (const o of def.options) visit(o, prefix, null, inherited);
    }
  };
  visit(configSchema, '', [], 'hot');
  return { keys, restart };
}

let walked: Walked | undefined;
const schemaWalk = (): Walked => {
  walked ??= walkSchema();
  return walked;
};

/** Every key of the config schema, depth first in schema order. */
export function schemaKeys(): readonly SchemaKey[] {
  return schemaWalk().keys;
}

/** The dotted names of the keys that need a restart (`listeners`, `forwarding.via`, ...). */
export function restartOnlyKeys(): readonly string[] {
  return schemaWalk().restart.map((p) => p.join('.'));
}

type Obj = Record<string, unknown>;

function getAt(root: unknown, path: readonly string[]): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Obj)[k];
  }
  return v;
}

/** A copy of `root` with `path` set to `value` (removed when undefined); `root` is left as it was. */
function setAt(root: Obj, path: readonly string[], value: unknown): Obj {
  const [k, ...rest] = path;
  const copy = { ...root };
  if (rest.length === 0) {
    if (value === undefined) delete copy[k];
    else copy[k] = value;
  } else {
    const child = copy[k];
    copy[k] = setAt(child !== null && typeof child === 'object' ? (child as Obj) : {}, rest, value);
  }
  return copy;
}

/**
 * The config a reload applies: `after` with every restart-only key put back to its value in
 * `before` (so nothing restart-only is half applied), and the dotted names of the restart-only
 * keys whose value changed.
 */
export function splitReload(before: Config, after: Config): { config: Config; restartKeys: string[] } {
  let config = after as unknown as Obj;
  const restartKeys: string[] = [];
  for (const path of schemaWalk().restart) {
    const was = getAt(before, path);
    if (isDeepStrictEqual(was, getAt(after, path))) continue;
    restartKeys.push(path.join('.'));
    config = setAt(config, path, was);
  }
  return { config: config as unknown as Config, restartKeys };
}
