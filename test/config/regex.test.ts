// Nothing a user can type blocks the event loop: every user regex is compiled for V8's linear-time
// engine, by validation and by the router alike, or refused with the reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatError } from '../../src/config/load.ts';
import type { RouteConfig } from '../../src/config/schema.ts';
import { compileUserRegex } from '../../src/config/units.ts';
import { validateText } from '../../src/config/validate.ts';
import { compileRoute, type MatchInput, matchRoute, mismatch } from '../../src/routing/table.ts';
import type { Upstream } from '../../src/upstream/upstream.ts';

const withRegex = (
  re: string,
  key = 'match: { pathRegex: "RE" }',
) => `listeners: [{ name: web, address: "127.0.0.1:0" }]
routes:
  - name: files
    ${key.replace('RE', re)}
    upstream: u
upstreams:
  u: { targets: [{ url: "http://127.0.0.1:1" }] }
`;
const errorsOf = (yaml: string) => validateText(yaml, 'c.yaml', {}).errors.map(formatError);

const input = (path: string): MatchInput => ({
  host: 'example.com',
  sni: '',
  path,
  method: 'GET',
  headers: {},
  query: '',
  params: undefined,
  geo: () => null,
});

const routeOf = (cfg: RouteConfig) =>
  compileRoute(
    cfg,
    0,
    { upstream: {} as Upstream, split: null, local: null, mirror: null, errorPages: null, backend: 'u' },
    [],
    1024,
  );

test('a modifier group and a backreference are refused by validate, saying why', () => {
  // The example: with backtracking, a 31-character path held the event loop for seconds.
  assert.deepEqual(errorsOf(withRegex('^/files/(?i:[a-z0-9]+)+\\\\.txt$')), [
    'c.yaml:4: routes.0.match.pathRegex: a modifier group such as (?i:...) cannot run in linear time (user regexes must, so that no request can make matching slow)',
  ]);
  assert.deepEqual(errorsOf(withRegex('^/(a+)/\\\\1$')), [
    'c.yaml:4: routes.0.match.pathRegex: a backreference (\\1, \\k<name>) cannot run in linear time (user regexes must, so that no request can make matching slow)',
  ]);
  assert.deepEqual(
    errorsOf(
      withRegex('(a)\\\\1', 'match: { pathPrefix: / }\n    rewrite: { regex: "RE", replacement: /x }'),
    ),
    [
      'c.yaml:5: routes.0.rewrite.regex: a backreference (\\1, \\k<name>) cannot run in linear time (user regexes must, so that no request can make matching slow)',
    ],
  );
});

test('an accepted regex compiles to the linear engine in the router, and still matches', () => {
  const v = validateText(
    withRegex(
      '^/files/([a-z0-9]+)+\\\\.txt$',
      'match: { pathRegex: "RE" }\n    rewrite: { regex: "^/files/(.*)$", replacement: "/f/$1" }',
    ),
    'c.yaml',
    {},
  );
  assert.deepEqual(v.errors, []);
  const route = routeOf(v.config!.routes[0]);
  assert.equal(route.pathRegex?.flags, 'l', 'compiled for the linear-time engine');
  assert.equal(route.rewrite?.regex.flags, 'l');
  assert.equal(matchRoute([route], input('/files/report2026.txt')), route);
  assert.equal(mismatch(route, input('/files/report.pdf')), 'path');
  assert.equal('/files/a.txt'.replace(route.rewrite!.regex, route.rewrite!.replacement), '/f/a.txt');
  // Nested quantifiers: exponential for a backtracking engine, linear here.
  const started = performance.now();
  assert.equal(mismatch(route, input(`/files/${'a'.repeat(31)}!`)), 'path');
  assert.equal(mismatch(route, input(`/files/${'a'.repeat(5000)}!`)), 'path');
  assert.ok(performance.now() - started < 500, 'matching stays fast');
});

test('the router refuses a regex the engine cannot run, even one that skipped validation', () => {
  const cfg = {
    name: 'files',
    match: { pathRegex: '^/files/(?i:[a-z0-9]+)+\\.txt$' },
    priority: 0,
    stripPrefix: false,
    middlewares: [],
    upstream: 'u',
  } as unknown as RouteConfig;
  assert.throws(
    () => routeOf(cfg),
    /^Error: routes\.0\.match\.pathRegex: a modifier group such as \(\?i:\.\.\.\)/,
  );
  assert.throws(() => compileUserRegex('(a)\\1'), /a backreference/);
  assert.equal(compileUserRegex('^/a/(\\d+)$').flags, 'l');
});
