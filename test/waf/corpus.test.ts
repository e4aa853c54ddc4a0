// Detection rate per attack class and false-positive rate on the benign corpus, at each paranoia
// level (test/waf/corpus.ts measures; docs/waf.md shows the same table). The floors are the
// measured figures rounded down: a change that loses detection or adds misfires fails here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLASSES, corpus, engine, measure, scoreQuery, table, wire } from './corpus.ts';

const m = measure();

test('the corpora hold hundreds of payloads per class, and a benign corpus', () => {
  console.log(`\n${table(m)}\n`);
  for (const cls of CLASSES) assert.ok(m.counts[cls] >= 280, `${cls}: ${m.counts[cls]} payloads`);
  assert.ok(m.benign >= 600, `benign: ${m.benign}`);
});

/** [PL1, PL2, PL3, PL4] floors, as shares. */
const DETECTION_FLOORS: Record<(typeof CLASSES)[number], number[]> = {
  sqli: [0.9, 0.96, 0.96, 0.96],
  xss: [0.98, 0.98, 0.98, 0.98],
  traversal: [0.93, 0.99, 0.99, 0.99],
  rce: [0.88, 0.97, 0.97, 0.97],
};
const FALSE_POSITIVE_CEILINGS = [0.005, 0.025, 0.035, 0.035];

for (const cls of CLASSES) {
  test(`${cls}: detection at each paranoia level`, () => {
    DETECTION_FLOORS[cls].forEach((floor, i) => {
      assert.ok(
        m.detection[cls][i] >= floor,
        `${cls} at PL${i + 1}: ${(m.detection[cls][i] * 100).toFixed(1)}% < ${floor * 100}%` +
          (i === 0 ? `\nmissed:\n${m.missed[cls].join('\n')}` : ''),
      );
    });
  });
}

test('benign traffic: false positives at each paranoia level', () => {
  FALSE_POSITIVE_CEILINGS.forEach((ceiling, i) => {
    assert.ok(
      m.falsePositives[i] <= ceiling,
      `PL${i + 1}: ${(m.falsePositives[i] * 100).toFixed(1)}% > ${ceiling * 100}%\n` +
        m.misfires[i].map((f) => `${f.rules.join(',')} ${JSON.stringify(f.value)}`).join('\n'),
    );
  });
  // each level adds rules: what PL1 blocks, PL2 blocks too
  for (let i = 1; i < 4; i++) assert.ok(m.falsePositives[i] >= m.falsePositives[i - 1]);
});

test('held-out XSS payloads (not looked at while writing the rules) are caught at PL1', () => {
  const e = engine(1);
  const list = corpus('holdout-xss.txt');
  const caught = list.filter((p) => scoreQuery(e, wire(p)).score >= 5).length;
  console.log(`held-out xss at PL1: ${caught}/${list.length}`);
  assert.ok(caught / list.length >= 0.95, `${caught}/${list.length}`);
});

test('benign values sent as whole JSON documents pass at PL1', () => {
  const e = engine(1);
  const docs = [
    { name: "O'Brien", bio: "I'm a developer; I like SQL & JS.", tags: ['select', 'union', 'drop'] },
    { query: 'select a dress', filters: { size: 'M', price: '< 100' }, page: 2 },
    { comment: 'Use `npm install` then `npx tsc` — works with Node 26.', votes: 3 },
    { markdown: '# Title\n\n**bold** and [a link](https://example.com)\n\n- one\n- two', draft: true },
    { address: "12 Rue de l'Église, 75001 Paris", phone: '+33 1 23 45 67 89' },
  ];
  for (const d of docs) {
    const st = e.start('/api');
    e.inspectHead(st, { method: 'POST', path: '/api', query: '', rawHeaders: [] });
    e.inspectBodyBytes(st, Buffer.from(JSON.stringify(d)), true, 'application/json');
    assert.equal(st.score, 0, `${JSON.stringify(d)}: ${JSON.stringify(st.matches)}`);
  }
});
