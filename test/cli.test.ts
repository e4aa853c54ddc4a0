import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { send } from './helpers/http.ts';
import { origin } from './helpers/origin.ts';
import { configFile, listenerUrl, runGatehouse, spawnGatehouse } from './helpers/process.ts';

const minimal = (upstream = 'http://127.0.0.1:1', address = '127.0.0.1:0') => `
listeners: [{ name: web, address: "${address}" }]
routes: [{ name: all, match: { pathPrefix: / }, upstream: u }]
upstreams:
  u: { targets: [{ url: "${upstream}" }] }
`;

test('validate: exit 0 with a one-line summary', async () => {
  const r = await runGatehouse(['validate', '-c', await configFile(minimal())]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /: ok \(1 listener, 1 route, 1 upstream, 0 middlewares\)\n$/);
});

test('validate: exit 1 with every error as file:line: key: reason', async () => {
  const file = await configFile(
    'listeners: [{ name: web, address: nowhere }]\nroutes: [{ name: r, upstream: missing }]\n',
  );
  const r = await runGatehouse(['validate', '-c', file]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `${file}:1: listeners.0.address: expected an address such as 127.0.0.1:8080, [::1]:8080 or :8080\n` +
      `${file}:2: routes.0.upstream: no upstream named "missing"\n2 errors in ${file}\n`,
  );
});

test('an unreadable or missing file is a clear message and exit 1', async () => {
  const missing = await runGatehouse(['run', '-c', '/nonexistent/gh.yaml']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^\/nonexistent\/gh\.yaml:1: \(file\): file not found/);
  // Unreadable even for root (CI runs as root, where a mode-000 file is still readable).
  const dir = dirname(await configFile(minimal()));
  const unreadable = await runGatehouse(['run', '-c', dir]);
  assert.equal(unreadable.code, 1);
  assert.equal(unreadable.stderr, `${dir}:1: (file): is a directory, not a config file\n1 error in ${dir}\n`);
});

test('usage errors exit 2 with help', async () => {
  const r = await runGatehouse(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  const noFile = await runGatehouse(['run']);
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /-c FILE is required/);
});

test('explain prints the decision and exits 0 on a match, 1 on none', async () => {
  const file = await configFile(minimal());
  const r = await runGatehouse([
    'explain',
    '-c',
    file,
    'http://example.com/a?b=1',
    '-X',
    'POST',
    '-H',
    'x-a: 1',
  ]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /request: {2}POST http:\/\/example.com\/a\?b=1/);
  assert.match(r.stdout, /route all → upstream u/);
});

test('schema prints the JSON Schema', async () => {
  const r = await runGatehouse(['schema']);
  assert.equal(r.code, 0);
  const s = JSON.parse(r.stdout);
  assert.equal(s.type, 'object');
  assert.ok(s.properties.listeners);
});

test('a port already in use: a clear message and exit 1', async () => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const port = (blocker.address() as { port: number }).port;
  const r = await runGatehouse(['run', '-c', await configFile(minimal(undefined, `127.0.0.1:${port}`))]);
  blocker.close();
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(`listener web: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`),
  );
  assert.doesNotMatch(r.stderr, /at .*\(/, 'no stack trace');
});

test('SIGTERM: stops accepting, lets the in-flight request finish, exits 0', async () => {
  let release: () => void = () => {};
  const slow = await origin((_req, res) => {
    release = () => res.end('finished');
  });
  const p = spawnGatehouse(['run', '-c', await configFile(minimal(slow.url))]);
  const url = await listenerUrl(p);
  const inflight = send(`${url}/slow`);
  while (slow.seen.length === 0) await new Promise((r) => setTimeout(r, 10));
  p.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(p.child.exitCode, null, 'still running while a request is in flight');
  await assert.rejects(send(`${url}/new`), 'new connections are refused');
  release();
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'finished');
  assert.equal(await p.exited, 0);
  assert.match(p.stderr, /SIGTERM: finishing 1 request\(s\), then stopping/);
  await slow.close();
});

test('SIGHUP reloads routes; a broken file is refused and the running config stays', async () => {
  const a = await origin((_q, s) => s.end('a'));
  const b = await origin((_q, s) => s.end('b'));
  const file = await configFile(minimal(a.url));
  const p = spawnGatehouse(['run', '-c', file]);
  const url = await listenerUrl(p);
  assert.equal((await send(url)).body, 'a');
  await writeFile(file, 'listeners: [oops\n');
  p.child.kill('SIGHUP');
  while (!/reload refused/.test(p.stderr)) await new Promise((r) => setTimeout(r, 20));
  assert.equal((await send(url)).body, 'a');
  await writeFile(file, minimal(b.url).replace('127.0.0.1:0', url.replace('http://', '')));
  p.child.kill('SIGHUP');
  while (!/reloaded/.test(p.stderr)) await new Promise((r) => setTimeout(r, 20));
  assert.equal((await send(url)).body, 'b');
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
  await a.close();
  await b.close();
});

// "Billion laughs": a few lines whose aliases would expand to 9^5 values.
const aliasBomb = `a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
listeners: [{ name: web, address: "127.0.0.1:0" }]
`;
const bombError = (file: string) =>
  `${file}:2: (file): excessive alias count: the aliases (*name) here expand to more than 100 values, as in a "billion laughs" attack; write the values out`;

test('validate: a YAML alias bomb is one plain error and exit 1, no stack trace', async () => {
  const file = await configFile(aliasBomb);
  const r = await runGatehouse(['validate', '-c', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `${bombError(file)}\n1 error in ${file}\n`);
  assert.doesNotMatch(r.stderr, /at .*\(|Error:/, 'no stack trace');
});

test('SIGHUP with an alias bomb in the file: reload refused, still alive and serving', async () => {
  const a = await origin((_q, s) => s.end('a'));
  const file = await configFile(minimal(a.url));
  const p = spawnGatehouse(['run', '-c', file]);
  try {
    const url = await listenerUrl(p);
    assert.equal((await send(url)).body, 'a');
    await writeFile(file, aliasBomb);
    p.child.kill('SIGHUP');
    while (!/reload refused/.test(p.stderr)) {
      assert.equal(p.child.exitCode, null, `still running: ${p.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(
      p.stderr,
      new RegExp(`reload refused: ${bombError(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(p.child.exitCode, null, 'still running');
    assert.equal(p.child.signalCode, null);
    assert.equal((await send(url)).body, 'a', 'still serving the running config');
    assert.doesNotMatch(p.stderr, /at .*\(/, 'no stack trace');
  } finally {
    if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await p.exited;
    await a.close();
  }
});
