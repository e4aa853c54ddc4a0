// docs/configuration.md and the schema say the same thing: every key of the schema is documented,
// every documented key exists, with the schema's reload class and default; and every property of
// the JSON Schema for editors has a description.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { schemaKeys } from '../../src/config/reloadable.ts';
import { jsonSchema } from '../../src/config/schema.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const HEADER = '| key | default | reload | meaning |';

interface DocRow {
  key: string;
  default: string;
  reload: string;
  line: number;
}

/** A table row's cells, trimmed (a `|` inside backticks does not occur in these tables). */
function cellsOf(line: string): string[] {
  return line
    .replace(/^\|/, '')
    .replace(/\|\s*$/, '')
    .split(' | ')
    .map((c) => c.trim());
}

/** The rows of every key table in the page (tables headed `| key | default | reload | meaning |`). */
function docRows(): DocRow[] {
  const lines = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8').split('\n');
  const rows: DocRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('| key ')) continue;
    // Tables may be padded (the formatter aligns columns): compare cells, not spacing.
    assert.equal(
      cellsOf(lines[i]).join(' | '),
      cellsOf(HEADER).join(' | '),
      `configuration.md:${i + 1}: every key table has the columns key, default, reload, meaning`,
    );
    for (let j = i + 2; j < lines.length && lines[j].startsWith('|'); j++) {
      const cells = cellsOf(lines[j]);
      const m = /^`([^`]+)`$/.exec(cells[0]);
      assert.ok(m, `configuration.md:${j + 1}: the key column holds one key in backticks`);
      rows.push({ key: m[1], default: cells[1], reload: cells[2], line: j + 1 });
    }
  }
  return rows;
}

// biome-ignore lint/suspicious/noExplicitAny: walking JSON Schema
type Json = any;

/** The JSON Schema node of a key written as the docs write it (`upstreams.<name>.targets[].url`). */
function jsonNode(root: Json, path: string): Json {
  let n = root;
  for (const part of path.split(/\.|(?=\[\])/)) {
    if (part === '[]') n = n.items;
    else if (part === '<name>') n = n.additionalProperties;
    else n = n.properties?.[part];
    assert.ok(n, `${path}: no node at ${part}`);
  }
  return n;
}

test('every key of the schema is in docs/configuration.md, and every key there is in the schema', () => {
  const schema = new Map(schemaKeys().map((k) => [k.path, k]));
  const rows = docRows();
  const documented = new Map<string, DocRow>();
  for (const r of rows) {
    assert.ok(!documented.has(r.key), `configuration.md:${r.line}: ${r.key} is documented twice`);
    documented.set(r.key, r);
  }
  const missing = [...schema.keys()].filter((k) => !documented.has(k));
  const stale = rows.filter((r) => !schema.has(r.key)).map((r) => `configuration.md:${r.line}: ${r.key}`);
  assert.deepEqual(missing, [], 'keys in the schema but not in docs/configuration.md');
  assert.deepEqual(stale, [], 'keys in docs/configuration.md but not in the schema');
});

test('the docs give each key the reload class and the default the schema declares', () => {
  const schema = new Map(schemaKeys().map((k) => [k.path, k]));
  const json = jsonSchema();
  for (const r of docRows()) {
    const key = schema.get(r.key);
    if (!key) continue; // reported by the test above
    assert.equal(r.reload, key.reload, `configuration.md:${r.line}: ${r.key} reloads ${key.reload}`);
    const def = jsonNode(json, r.key).default;
    if (typeof def === 'string' || typeof def === 'number' || typeof def === 'boolean')
      assert.ok(
        r.default.includes(`\`${def}\``),
        `configuration.md:${r.line}: ${r.key} defaults to \`${def}\`, not ${r.default}`,
      );
  }
});

test('every property of the JSON Schema has a description, and gatehouse.schema.json is up to date', () => {
  const json = jsonSchema();
  const bare: string[] = [];
  let count = 0;
  const walk = (node: Json, path: string): void => {
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries<Json>(node.properties ?? {})) {
      count++;
      if (typeof v.description !== 'string' || v.description.length < 10) bare.push(`${path}${k}`);
    }
    for (const [k, v] of Object.entries<Json>(node)) walk(v, k === 'properties' ? path : `${path}${k}/`);
  };
  walk(json, '');
  assert.equal(count, schemaKeys().length);
  assert.deepEqual(bare, [], 'properties without a description');
  assert.ok(
    !JSON.stringify(json).includes('"reload":'),
    'the reload class is written as text, not a keyword',
  );
  const file = JSON.parse(readFileSync(join(ROOT, 'gatehouse.schema.json'), 'utf8'));
  assert.deepEqual(file, json, 'gatehouse.schema.json is regenerated with `npm run schema`');
});
