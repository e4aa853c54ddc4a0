// Reads a YAML or JSON config file, keeping where every value came from, so that every error can be
// reported as `file:line: key: reason`. `${NAME}` and `${NAME:-default}` are replaced from the
// environment; `$${` writes a literal `${`. Whatever the text holds, the answer is a value or a list
// of errors, never an exception: aliases are limited (a "billion laughs" file is an error), and any
// other failure while reading becomes an error at line 1.
import { readFile } from 'node:fs/promises';
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  parse as parseYaml,
  visit,
} from 'yaml';

export interface ConfigError {
  file: string;
  line: number;
  column: number;
  /** Dotted path to the value: `routes.1.upstream`. Empty for the file as a whole. */
  key: string;
  reason: string;
}

export function formatError(e: ConfigError): string {
  return `${e.file}:${e.line}: ${e.key || '(file)'}: ${e.reason}`;
}

/** A parsed document that can say where a path points. */
export interface SourceMap {
  file: string;
  locate(path: readonly PropertyKey[]): { line: number; column: number };
}

export interface Loaded {
  value: unknown;
  source: SourceMap;
  errors: ConfigError[];
}

/** Values that aliases (`*name`) may add in all; past it the file is refused, not expanded. */
const MAX_ALIAS_COUNT = 100;

const ENV_RE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_ENV_RE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

export async function loadFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Loaded> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory, not a config file'
            : `cannot read file (${code})`;
    return {
      value: undefined,
      source: { file, locate: () => ({ line: 1, column: 1 }) },
      errors: [{ file, line: 1, column: 1, key: '', reason }],
    };
  }
  return loadText(text, file, env);
}

/** A load that failed as a whole, with one error. */
function refused(file: string, line: number, column: number, reason: string): Loaded {
  return {
    value: undefined,
    source: { file, locate: () => ({ line: 1, column: 1 }) },
    errors: [{ file, line, column, key: '', reason }],
  };
}

export function loadText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Loaded {
  try {
    return parseText(text, file, env);
  } catch (e) {
    return refused(file, 1, 1, `cannot read this file: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function parseText(text: string, file: string, env: NodeJS.ProcessEnv): Loaded {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, merge: false });
  const errors: ConfigError[] = [];
  const at = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const pathOf = (ancestors: readonly unknown[]): string => {
    const parts: string[] = [];
    for (let i = 0; i < ancestors.length; i++) {
      const a = ancestors[i];
      if (isPair(a) && isScalar(a.key)) parts.push(String(a.key.value));
      else if (isSeq(a)) {
        const next = ancestors[i + 1] ?? undefined;
        const idx = a.items.indexOf(next as never);
        if (idx >= 0) parts.push(String(idx));
      }
    }
    return parts.join('.');
  };

  for (const e of doc.errors) {
    const { line, column } = at(e.pos[0]);
    const reason =
      e.code === 'DUPLICATE_KEY'
        ? 'duplicate key'
        : e.message.split('\n')[0].replace(/ at line \d+, column \d+.*/, '');
    errors.push({ file, line, column, key: '', reason });
  }
  if (errors.length > 0 || doc.contents === null) {
    if (errors.length === 0) errors.push({ file, line: 1, column: 1, key: '', reason: 'the file is empty' });
    return { value: undefined, source: { file, locate: () => ({ line: 1, column: 1 }) }, errors };
  }

  // ${ENV} interpolation on scalar strings, in place, keeping each node's position.
  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (typeof node.value !== 'string' || !node.value.includes('$')) return;
      const original = node.value;
      const missing: string[] = [];
      const replaced = original.replace(
        ENV_RE,
        (whole, nameRef: string | undefined, def: string | undefined) => {
          if (whole === '$${') return '${';
          const v = env[nameRef as string];
          if (v !== undefined && v !== '') return v;
          if (def !== undefined) return def;
          missing.push(nameRef as string);
          return '';
        },
      );
      const path = pathOf([...ancestors, node]);
      for (const m of missing) {
        const { line, column } = at(node.range?.[0] ?? 0);
        errors.push({
          file,
          line,
          column,
          key: path,
          reason: `environment variable ${m} is not set (write \${${m}:-default} to give a default)`,
        });
      }
      // A value that is one reference alone takes the type its text reads as (`weight: ${W}` → 2).
      if (WHOLE_ENV_RE.test(original)) {
        const typed = safeScalar(replaced);
        node.value = typed;
      } else {
        node.value = replaced;
      }
    },
  });

  const source: SourceMap = {
    file,
    locate(path) {
      const node = nodeAt(doc.contents as Node, path);
      return at(node?.range?.[0] ?? 0);
    },
  };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // yaml's "Excessive alias count indicates a resource exhaustion attack".
    if (!(e instanceof ReferenceError && /alias/i.test(e.message))) throw e;
    let first: Node | undefined;
    visit(doc, {
      Alias(_key, node) {
        first = node;
        return visit.BREAK;
      },
    });
    const { line, column } = at(first?.range?.[0] ?? 0);
    return refused(
      file,
      line,
      column,
      `excessive alias count: the aliases (*name) here expand to more than ${MAX_ALIAS_COUNT} values, as in a "billion laughs" attack; write the values out`,
    );
  }
  return { value, source, errors };
}

function safeScalar(text: string): unknown {
  try {
    const v = parseYaml(text);
    return typeof v === 'number' || typeof v === 'boolean' ? v : text;
  } catch {
    return text;
  }
}

/** The deepest node on `path`: for a key that does not exist, its parent; for a last segment that is a map key, the key. */
function nodeAt(root: Node, path: readonly PropertyKey[]): Node | undefined {
  let node: Node | undefined = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair: Pair | undefined = node.items.find(
        (p) => isScalar(p.key) && String(p.key.value) === String(seg),
      );
      if (!pair) return node;
      node = i === path.length - 1 ? (pair.key as Node) : ((pair.value as Node | null) ?? (pair.key as Node));
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (!item) return node;
      node = item;
    } else {
      return node;
    }
  }
  return node;
}
