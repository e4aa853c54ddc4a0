import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatError, loadFile, loadText } from '../../src/config/load.ts';
import { parseAddress, parseDuration, parseSize } from '../../src/config/units.ts';
import { validateFile, validateLoaded, validateText } from '../../src/config/validate.ts';

test('durations, sizes and addresses parse to numbers', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('5s'), 5000);
  assert.equal(parseDuration('1.5m'), 90_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('5'), undefined);
  assert.equal(parseSize('32kb'), 32 * 1024);
  assert.equal(parseSize('10MB'), 10 * 1024 * 1024);
  assert.equal(parseSize('ten'), undefined);
  assert.deepEqual(parseAddress('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseAddress(':80'), { host: '0.0.0.0', port: 80 });
  assert.equal(parseAddress('127.0.0.1'), undefined);
  assert.equal(parseAddress('h:70000'), undefined);
});

test('${NAME} is replaced from the environment, ${NAME:-x} has a default, $${ is literal', () => {
  const r = loadText(
    'a: ${HOST}:${PORT}\nb: ${W}\nc: ${NOPE:-fallback}\nd: "$${HOST}"\ne: ${T}\n',
    'f.yaml',
    {
      HOST: 'h',
      PORT: '80',
      W: '3',
      T: 'true',
    },
  );
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.value, { a: 'h:80', b: 3, c: 'fallback', d: '${HOST}', e: true });
});

test('a missing environment variable is an error at its line', () => {
  const r = loadText('a: 1\nb:\n  c: ${MISSING}\n', 'f.yaml', {});
  assert.equal(r.errors.length, 1);
  assert.equal(
    formatError(r.errors[0]),
    'f.yaml:3: b.c: environment variable MISSING is not set (write ${MISSING:-default} to give a default)',
  );
});

test('YAML syntax errors and duplicate keys are reported with their line', () => {
  const r = loadText('a: 1\na: 2\n', 'f.yaml', {});
  assert.equal(r.errors.length, 1);
  assert.match(formatError(r.errors[0]), /^f\.yaml:2: \(file\): duplicate key$/);
  const bad = loadText('a: [1, 2\nb: 3\n', 'g.yaml', {});
  assert.ok(bad.errors.length >= 1);
  assert.match(formatError(bad.errors[0]), /^g\.yaml:\d+: /);
});

test('a missing or empty file is a clear error', async () => {
  const r = await loadFile('/nonexistent/gatehouse.yaml');
  assert.equal(formatError(r.errors[0]), '/nonexistent/gatehouse.yaml:1: (file): file not found');
  assert.match(formatError(validateText('', 'e.yaml').errors[0]), /e\.yaml:1: \(file\): the file is empty/);
});

test('JSON files load with positions too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gh-'));
  const file = join(dir, 'c.json');
  await writeFile(
    file,
    JSON.stringify(
      {
        listeners: [{ name: 'web', address: '127.0.0.1:0' }],
        routes: [{ name: 'r', upstream: 'nope' }],
        upstreams: { u: { targets: [{ url: 'http://127.0.0.1:1' }] } },
      },
      null,
      2,
    ),
  );
  const v = await validateFile(file);
  assert.equal(v.errors.length, 1);
  assert.equal(formatError(v.errors[0]), `${file}:11: routes.0.upstream: no upstream named "nope"`);
});

test('defaults fill in: the smallest useful file is a listener, a route and an upstream', () => {
  const v = validateText(
    'listeners: [{ name: web, address: "127.0.0.1:0" }]\nroutes: [{ name: r, upstream: u }]\nupstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }\n',
  );
  assert.deepEqual(v.errors, []);
  const c = v.config!;
  assert.equal(c.limits.maxRequestBody, 10 * 1024 * 1024);
  assert.equal(c.limits.headerTimeout, 10_000);
  assert.equal(c.upstreams.u.loadBalancer, 'roundRobin');
  assert.equal(c.upstreams.u.targets[0].weight, 1);
  assert.equal(c.upstreams.u.timeouts.connect, 5000);
  assert.equal(c.upstreams.u.passHostHeader, true);
  assert.equal(c.accessLog.path, 'stdout');
  assert.deepEqual(c.routes[0].match, {});
});

// "Billion laughs": nine aliases of nine aliases of ... of nine values, 9^5 values from a few lines.
const ALIAS_BOMB = `a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
listeners: [{ name: web, address: "127.0.0.1:0" }]
`;

test('a YAML alias bomb is a plain error at the first alias, not an exception', async () => {
  const expected =
    'bomb.yaml:2: (file): excessive alias count: the aliases (*name) here expand to more than 100 values, as in a "billion laughs" attack; write the values out';
  const loaded = loadText(ALIAS_BOMB, 'bomb.yaml', {});
  assert.equal(loaded.value, undefined);
  assert.deepEqual(loaded.errors.map(formatError), [expected]);
  assert.deepEqual(validateText(ALIAS_BOMB, 'bomb.yaml', {}).errors.map(formatError), [expected]);
  const dir = await mkdtemp(join(tmpdir(), 'gh-'));
  const file = join(dir, 'bomb.yaml');
  await writeFile(file, ALIAS_BOMB);
  assert.deepEqual((await loadFile(file, {})).errors.map(formatError), [expected.replace('bomb.yaml', file)]);
  const v = await validateFile(file, {});
  assert.equal(v.config, undefined);
  assert.deepEqual(v.errors.map(formatError), [expected.replace('bomb.yaml', file)]);
  // A few aliases are fine.
  assert.deepEqual(loadText('x: &x [1, 2]\ny: [*x, *x]\n', 'f.yaml', {}).value, {
    x: [1, 2],
    y: [
      [1, 2],
      [1, 2],
    ],
  });
});

test('any other exception while loading or checking becomes a plain error', () => {
  // A getter that throws stands in for a bug anywhere in the checks.
  const loaded = {
    value: {
      get listeners(): never {
        throw new TypeError('boom');
      },
    },
    source: { file: 'x.yaml', locate: () => ({ line: 1, column: 1 }) },
    errors: [],
  };
  const v = validateLoaded(loaded);
  assert.equal(v.config, undefined);
  assert.deepEqual(v.errors.map(formatError), ['x.yaml:1: (file): cannot check this file: boom']);
  // Nesting deep enough to exhaust the parser's stack.
  const deep = `a: ${'['.repeat(200_000)}`;
  const r = validateText(deep, 'deep.yaml', {});
  assert.equal(r.config, undefined);
  assert.ok(r.errors.length >= 1);
  assert.match(formatError(r.errors[0]), /^deep\.yaml:\d+: /);
});
