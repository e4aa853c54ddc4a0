import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { compile, type Plan } from '../../src/config/compile.ts';
import { validateText } from '../../src/config/validate.ts';
import { explain } from '../../src/routing/explain.ts';
import { type MatchInput, matchRoute, upstreamPath } from '../../src/routing/table.ts';

const plans: Plan[] = [];
after(() => Promise.all(plans.map((p) => p.close())));

function planOf(routes: string, listeners = 'listeners: [{ name: web, address: "127.0.0.1:0" }]'): Plan {
  const v = validateText(
    `${listeners}\nupstreams:\n  u: { targets: [{ url: "http://127.0.0.1:1" }] }\nroutes:\n${routes}`,
  );
  assert.deepEqual(v.errors, []);
  const p = compile(v.config!);
  plans.push(p);
  return p;
}

function route(
  p: Plan,
  req: Partial<MatchInput> & { queryString?: string },
  listener = 'web',
): string | undefined {
  const input: MatchInput = {
    host: req.host ?? 'example.com',
    sni: '',
    path: req.path ?? '/',
    method: req.method ?? 'GET',
    headers: req.headers ?? {},
    query: req.queryString ? `?${req.queryString}` : '',
    params: undefined,
    geo: () => null,
  };
  return matchRoute(p.listeners.get(listener)!.table, input)?.name;
}

test('hosts: exact, case-insensitive, *. wildcard at any depth but not the apex', () => {
  const p = planOf(`  - { name: exact, match: { hosts: [API.example.com] }, upstream: u }
  - { name: wild, match: { hosts: ["*.example.org"] }, upstream: u }`);
  assert.equal(route(p, { host: 'api.example.com' }), 'exact');
  assert.equal(route(p, { host: 'a.example.org' }), 'wild');
  assert.equal(route(p, { host: 'a.b.example.org' }), 'wild');
  assert.equal(route(p, { host: 'example.org' }), undefined);
  assert.equal(route(p, { host: 'xexample.org' }), undefined);
  assert.equal(route(p, { host: 'other.com' }), undefined);
});

test('paths: exact, prefix on a segment boundary, regex', () => {
  const p = planOf(`  - { name: exact, match: { path: /healthz }, upstream: u }
  - { name: prefix, match: { pathPrefix: /api/ }, upstream: u }
  - { name: regex, match: { pathRegex: "^/v[0-9]+/items$" }, upstream: u }`);
  assert.equal(route(p, { path: '/healthz' }), 'exact');
  assert.equal(route(p, { path: '/healthz/x' }), undefined);
  assert.equal(route(p, { path: '/api/users' }), 'prefix');
  assert.equal(route(p, { path: '/api/' }), 'prefix');
  assert.equal(route(p, { path: '/api' }), 'prefix');
  assert.equal(route(p, { path: '/apix' }), undefined);
  assert.equal(route(p, { path: '/v2/items' }), 'regex');
  assert.equal(route(p, { path: '/v2/items/1' }), undefined);
});

test('methods, headers (exact or *), query parameters', () => {
  const p = planOf(`  - { name: canary, match: { pathPrefix: /, headers: { x-canary: "1" } }, upstream: u }
  - { name: debug, match: { query: { debug: "*" } }, upstream: u }
  - { name: writes, match: { methods: [POST, PUT] }, upstream: u }`);
  assert.equal(route(p, { headers: { 'x-canary': '1' } }), 'canary');
  assert.equal(route(p, { headers: { 'x-canary': '0' } }), undefined);
  assert.equal(route(p, { queryString: 'debug=yes' }), 'debug');
  assert.equal(route(p, { queryString: 'nodebug=1' }), undefined);
  assert.equal(route(p, { method: 'PUT' }), 'writes');
  assert.equal(route(p, { method: 'GET' }), undefined);
});

test('precedence: priority, then host, then path specificity, then conditions, then file order', () => {
  const p = planOf(`  - { name: catchall, match: { pathPrefix: / }, upstream: u }
  - { name: api, match: { pathPrefix: /api }, upstream: u }
  - { name: apiV1, match: { pathPrefix: /api/v1 }, upstream: u }
  - { name: regex, match: { pathRegex: "^/api/v1/special" }, upstream: u }
  - { name: exact, match: { path: /api/v1/special }, upstream: u }
  - { name: canary, match: { pathPrefix: /api, headers: { x-canary: "1" } }, upstream: u }
  - { name: wildHost, match: { hosts: ["*.example.com"] }, upstream: u }
  - { name: exactHost, match: { hosts: [admin.example.com] }, upstream: u }
  - { name: pinned, priority: 10, match: { pathPrefix: /pinned }, upstream: u }
  - { name: first, match: { pathPrefix: /same }, upstream: u }
  - { name: second, match: { pathPrefix: /same }, upstream: u }`);
  const h = { host: 'plain.test' };
  assert.equal(route(p, { ...h, path: '/x' }), 'catchall');
  assert.equal(route(p, { ...h, path: '/api/users' }), 'api');
  assert.equal(route(p, { ...h, path: '/api/v1/users' }), 'apiV1');
  assert.equal(route(p, { ...h, path: '/api/v1/special/1' }), 'regex');
  assert.equal(route(p, { ...h, path: '/api/v1/special' }), 'exact');
  assert.equal(route(p, { ...h, path: '/api/users', headers: { 'x-canary': '1' } }), 'canary');
  assert.equal(route(p, { host: 'www.example.com', path: '/api/v1/special' }), 'wildHost');
  assert.equal(route(p, { host: 'admin.example.com', path: '/x' }), 'exactHost');
  assert.equal(route(p, { host: 'admin.example.com', path: '/pinned/x' }), 'pinned');
  assert.equal(route(p, { ...h, path: '/same' }), 'first');
});

test('a route bound to some listeners is not served on the others', () => {
  const p = planOf(
    `  - { name: internal, listeners: [admin], match: { pathPrefix: /internal }, upstream: u }
  - { name: all, match: { pathPrefix: / }, upstream: u }`,
    'listeners: [{ name: web, address: "127.0.0.1:0" }, { name: admin, address: "127.0.0.1:0" }]',
  );
  assert.equal(route(p, { path: '/internal/x' }, 'web'), 'all');
  assert.equal(route(p, { path: '/internal/x' }, 'admin'), 'internal');
});

test('stripPrefix and regex rewrite build the upstream path', () => {
  const p = planOf(`  - { name: strip, match: { pathPrefix: /api/ }, stripPrefix: true, upstream: u }
  - { name: rw, match: { pathPrefix: /old }, rewrite: { regex: "^/old/(.*)$", replacement: "/new/$1" }, upstream: u }`);
  const [strip, rw] = p.routes;
  assert.equal(upstreamPath(strip, '/api/users/1'), '/users/1');
  assert.equal(upstreamPath(strip, '/api'), '/');
  assert.equal(upstreamPath(strip, '/api/'), '/');
  assert.equal(upstreamPath(rw, '/old/a/b'), '/new/a/b');
});

test('explain names the winner, why earlier routes failed, and where the request goes', () => {
  const p = planOf(`  - { name: admin, match: { hosts: [admin.example.com] }, upstream: u }
  - { name: writes, match: { pathPrefix: /api, methods: [POST] }, upstream: u }
  - { name: api, match: { pathPrefix: /api/ }, stripPrefix: true, upstream: u }
  - { name: site, match: { pathPrefix: / }, upstream: u }`);
  const out = explain(p, 'http://api.example.com/api/users?x=1', 'GET', []);
  assert.ok(out.matched);
  assert.match(out.text, /admin\s+no\s+host api\.example\.com is not admin\.example\.com/);
  assert.match(out.text, /writes\s+no\s+method GET is not one of POST/);
  assert.match(out.text, /api\s+MATCH/);
  assert.match(out.text, /site\s+\(not tried\)/);
  assert.match(out.text, /route api → upstream u \(roundRobin\)/);
  assert.match(out.text, /path sent upstream: \/users\?x=1/);
  assert.match(out.text, /http:\/\/127\.0\.0\.1:1\s+weight 1/);
  const miss = explain(
    planOf('  - { name: only, match: { path: /a }, upstream: u }'),
    'http://h/b',
    'GET',
    [],
  );
  assert.equal(miss.matched, false);
  assert.match(miss.text, /404 \(route_not_found\)/);
});
