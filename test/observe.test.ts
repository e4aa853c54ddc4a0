import assert from 'node:assert/strict';
import { readFileSync, renameSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isoNow, LineWriter, q } from '../src/observe/accessLog.ts';

test('q() writes the same JSON string literal as JSON.stringify', () => {
  for (const s of [
    'plain',
    '',
    'with "quotes"',
    'back\\slash',
    'new\nline',
    'tab\t',
    '\u0000',
    'ünïcödé',
    '\u2028',
    '/path?x=1',
    'lone \ud800 surrogate',
    'pair 😀',
  ]) {
    assert.equal(q(s), JSON.stringify(s), s);
    assert.equal(JSON.parse(q(s)), s);
  }
});

test('isoNow() is toISOString()', () => {
  for (const ms of [
    0,
    5,
    42,
    999,
    1_000,
    1_764_000_000_007,
    1_764_000_000_070,
    1_764_000_000_700,
    Date.now(),
  ]) {
    assert.equal(isoNow(ms), new Date(ms).toISOString());
  }
});

test('the file writer batches lines, writes them on flush, and reopens after rotation', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gh-log-'));
  const file = join(dir, 'access.log');
  const w = new LineWriter(file);
  w.write('{"a":1}\n');
  w.write('{"a":2}\n');
  assert.equal(readFileSync(file, 'utf8'), '', 'buffered, not yet written');
  w.flush();
  assert.equal(readFileSync(file, 'utf8'), '{"a":1}\n{"a":2}\n');
  renameSync(file, `${file}.1`); // logrotate
  w.write('{"a":3}\n');
  w.reopen(); // SIGUSR1
  w.write('{"a":4}\n');
  w.close();
  assert.equal(readFileSync(`${file}.1`, 'utf8'), '{"a":1}\n{"a":2}\n{"a":3}\n');
  assert.equal(readFileSync(file, 'utf8'), '{"a":4}\n');
});

test('lines still buffered are written within the flush interval', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gh-log-'));
  const file = join(dir, 'access.log');
  const w = new LineWriter(file);
  w.write('{"late":true}\n');
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(readFileSync(file, 'utf8'), '{"late":true}\n');
  w.close();
});
