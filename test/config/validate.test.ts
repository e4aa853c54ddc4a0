import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatError } from '../../src/config/load.ts';
import { jsonSchema } from '../../src/config/schema.ts';
import { regexProblem, validateText } from '../../src/config/validate.ts';

const errorsOf = (yaml: string) => validateText(yaml, 'c.yaml', {}).errors.map(formatError);

test('every error is reported at once, schema and semantic alike, as file:line: key: reason', () => {
  const errors = errorsOf(`listeners:
  - name: web
    address: 0.0.0.0:99999
  - name: web
    address: 127.0.0.1:8080
routes:
  - name: api
    match:
      pathPrefx: /api
    upstream: apii
    middlewares: [nope]
  - name: api
    match: { pathRegex: "(a)\\\\1" }
    upstream: api
upstreams:
  api:
    loadBalancer: roundRobbin
    targets:
      - url: http://127.0.0.1:4000
        weight: two
    timeouts: { connect: 5 }
  web:
    targets: []
limits:
  maxRequestBody: 10 megs
`);
  assert.deepEqual(errors, [
    'c.yaml:3: listeners.0.address: expected an address such as 127.0.0.1:8080, [::1]:8080 or :8080',
    'c.yaml:4: listeners.1.name: duplicate listener name "web" (first at listeners.0)',
    'c.yaml:9: routes.0.match.pathPrefx: unknown key (did you mean "pathPrefix"?)',
    'c.yaml:10: routes.0.upstream: no upstream named "apii" (did you mean "api"?)',
    'c.yaml:11: routes.0.middlewares.0: no middleware named "nope"',
    'c.yaml:12: routes.1.name: duplicate route name "api" (first at routes.0)',
    'c.yaml:13: routes.1.match.pathRegex: a backreference (\\1, \\k<name>) cannot run in linear time (user regexes must, so that no request can make matching slow)',
    'c.yaml:17: upstreams.api.loadBalancer: expected one of roundRobin, leastConnections, ipHash, consistentHash, random2',
    'c.yaml:20: upstreams.api.targets.0.weight: expected a number, got the string "two"',
    'c.yaml:21: upstreams.api.timeouts.connect: expected a duration such as 500ms, 5s, 1m or 2h',
    'c.yaml:23: upstreams.web.targets: an upstream needs at least one target',
    'c.yaml:25: limits.maxRequestBody: expected a size such as 512b, 32kb, 10mb or 1gb',
  ]);
});

const base = (extra: string) => `listeners: [{ name: web, address: "127.0.0.1:0" }]
upstreams:
  u: { targets: [{ url: "http://127.0.0.1:1" }] }
${extra}`;

test('semantic checks: listeners, middlewares, hosts, strip, CIDRs, targets, admin', () => {
  const errors = errorsOf(
    base(`routes:
  - name: r
    listeners: [webb]
    match: { hosts: ["a.example.com:80", "bad host"], path: /x, pathPrefix: /y }
    upstream: u
  - name: s
    match: { path: /z }
    stripPrefix: true
    upstream: u
middlewares:
  m: { ipFilter: { allow: [10.0.0.0/33] } }
  two: { ipFilter: { allow: [10.0.0.0/8] }, headers: {} }
forwarding:
  trustedProxies: [not-an-ip]
admin:
  address: 0.0.0.0:9901
`),
  );
  assert.deepEqual(errors, [
    'c.yaml:6: routes.0.listeners.0: no listener named "webb" (did you mean "web"?)',
    'c.yaml:7: routes.0.match: use one of path, pathPrefix and pathRegex',
    'c.yaml:7: routes.0.match.hosts.0: a host has no port (the port is ignored when matching)',
    'c.yaml:7: routes.0.match.hosts.1: expected a host name such as api.example.com or *.example.com',
    'c.yaml:11: routes.1.stripPrefix: stripPrefix needs match.pathPrefix',
    'c.yaml:14: middlewares.m.ipFilter.allow.0: expected an IP address or CIDR such as 10.0.0.0/8 or ::1',
    'c.yaml:15: middlewares.two: a middleware has exactly one kind: rateLimit, headers, ipFilter, cache, compress, faultInjection, basicAuth, jwt, forwardAuth, apiKey, waf, cors, securityHeaders',
    'c.yaml:17: forwarding.trustedProxies.0: expected an IP address or CIDR such as 10.0.0.0/8 or ::1',
    'c.yaml:19: admin.address: a non-loopback admin address needs admin.token (the API would be open to the network)',
  ]);
});

test('target URLs: http, https or h2c, no path, no duplicates; hashKey only with consistentHash', () => {
  const errors = errorsOf(`listeners: [{ name: web, address: "127.0.0.1:0" }]
upstreams:
  u:
    hashKey: header:x-user
    targets:
      - url: http://127.0.0.1:1/app
      - url: ftp://127.0.0.1:2
      - url: http://127.0.0.1:1
      - url: not a url
`);
  assert.deepEqual(errors, [
    'c.yaml:4: upstreams.u.hashKey: hashKey is used only by loadBalancer: consistentHash (this upstream uses roundRobin)',
    'c.yaml:6: upstreams.u.targets.0.url: a target URL has no path or query (use rewrite on the route)',
    'c.yaml:7: upstreams.u.targets.1.url: a target is http://, https:// or h2c:// (cleartext HTTP/2)',
    'c.yaml:8: upstreams.u.targets.2.url: duplicate target (same as targets.0)',
    'c.yaml:9: upstreams.u.targets.3.url: expected a URL such as http://127.0.0.1:3000',
  ]);
});

test('admin needs a long enough token; access-log formats and tracing are checked', () => {
  assert.deepEqual(
    errorsOf(`listeners: [{ name: web, address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:9901" }
accessLog: { format: template, template: "$status $rout", fields: [status] }
tracing: { endpoint: "ftp://x" }
`),
    [
      'c.yaml:2: admin: needs a token: every admin request must carry it (e.g. token: ${GATEHOUSE_ADMIN_TOKEN})',
      'c.yaml:3: accessLog.template: unknown field $rout (did you mean "route"?)',
      'c.yaml:3: accessLog.fields: used only by format: json',
      'c.yaml:4: tracing.endpoint: expected an http(s) URL',
    ],
  );
  const tooShort =
    'c.yaml:2: admin.token: too short: use at least 16 characters other than spaces (e.g. openssl rand -hex 16)';
  assert.deepEqual(
    errorsOf('listeners: [{ name: web, address: "127.0.0.1:0" }]\nadmin: { token: short }\n'),
    [tooShort],
  );
  // Sixteen spaces, or a short word padded with them, are not a token.
  assert.deepEqual(
    errorsOf(`listeners: [{ name: web, address: "127.0.0.1:0" }]\nadmin: { token: "${' '.repeat(16)}" }\n`),
    [tooShort],
  );
  assert.deepEqual(
    errorsOf(
      `listeners: [{ name: web, address: "127.0.0.1:0" }]\nadmin: { token: " a b c d e f g h i j " }\n`,
    ),
    [tooShort],
  );
  assert.deepEqual(
    errorsOf('listeners: [{ name: web, address: "127.0.0.1:0" }]\nadmin: { token: 0123456789abcdef }\n'),
    [],
  );
});

test('resilience settings are checked against each other', () => {
  const errors = errorsOf(`listeners: [{ name: web, address: "127.0.0.1:0" }]
upstreams:
  u:
    targets:
      - { url: "http://127.0.0.1:1", backup: true }
    healthCheck:
      type: tcp
      path: /healthz
    timeouts: { response: 5s }
    retry: { perTryTimeout: 10s, statuses: [503, 5xx, "500-504", 42] }
    outlierDetection: { baseEjectionTime: 10m, maxEjectionPercent: 101 }
  v:
    targets: [{ url: "http://127.0.0.1:2" }]
    healthCheck: { expectBody: "(a)\\\\1" }
`);
  assert.deepEqual(errors, [
    'c.yaml:4: upstreams.u.targets: every target is a backup: at least one must be a primary',
    'c.yaml:8: upstreams.u.healthCheck.path: used only by type: http',
    'c.yaml:10: upstreams.u.retry.perTryTimeout: longer than timeouts.response (5s), the deadline for all tries together',
    'c.yaml:10: upstreams.u.retry.statuses.3: expected a status such as 503, a range "500-504" or a class "5xx"',
    'c.yaml:11: upstreams.u.outlierDetection.maxEjectionTime: shorter than baseEjectionTime',
    'c.yaml:11: upstreams.u.outlierDetection.maxEjectionPercent: must be at most 100',
    'c.yaml:14: upstreams.v.healthCheck.expectBody: a backreference (\\1, \\k<name>) cannot run in linear time (user regexes must, so that no request can make matching slow)',
  ]);
});

test('what is not offered yet is not in the schema: layer-4 listeners, TLS passthrough', () => {
  const errors = errorsOf(`listeners:
  - name: db
    address: 127.0.0.1:0
    protocol: tcp
  - name: s
    address: 127.0.0.1:0
    tls: { certificates: [{ certFile: a, keyFile: b }], passthrough: true }
    h2c: true
`);
  assert.deepEqual(errors, [
    'c.yaml:4: listeners.0.protocol: expected one of http',
    'c.yaml:7: listeners.1.tls.passthrough: unknown key',
    'c.yaml:8: listeners.1.h2c: h2c is HTTP/2 without TLS; this listener has TLS',
  ]);
  const s = jsonSchema() as {
    properties: {
      listeners: { items: { properties: Record<string, { enum?: string[]; properties?: object }> } };
    };
  };
  const listener = s.properties.listeners.items.properties;
  assert.deepEqual(listener.protocol.enum, ['http']);
  assert.ok(listener.tls.properties && !('passthrough' in listener.tls.properties));
});

test('a top-level typo gets a hint; the wrong shape is named', () => {
  assert.deepEqual(errorsOf('listener: []\n'), [
    'c.yaml:1: listeners: is required',
    'c.yaml:1: listener: unknown key (did you mean "listeners"?)',
  ]);
  assert.deepEqual(errorsOf('- a\n- b\n'), [
    'c.yaml:1: (file): expected a mapping of keys (listeners, routes, upstreams, ...)',
  ]);
  assert.deepEqual(errorsOf('listeners: { name: web }\n'), [
    'c.yaml:1: listeners: expected an array, got a mapping',
  ]);
});

test('user regexes must compile for the linear-time engine; the refusal says why', () => {
  assert.equal(regexProblem('^/api/v[0-9]+/'), undefined);
  assert.equal(regexProblem('^/files/([a-z0-9]+)+\\.txt$'), undefined, 'nested quantifiers are linear there');
  assert.match(regexProblem('(a)\\1') ?? '', /^a backreference .* cannot run in linear time/);
  assert.match(regexProblem('(?<n>a)\\k<n>') ?? '', /^a backreference/);
  assert.match(regexProblem('a(?=b)') ?? '', /^a lookahead/);
  assert.match(regexProblem('a(?!b)') ?? '', /^a lookahead/);
  assert.match(
    regexProblem('^/files/(?i:[a-z0-9]+)+\\.txt$') ?? '',
    /^a modifier group such as \(\?i:\.\.\.\)/,
  );
  assert.match(regexProblem('^/[a-z]{3,64}$') ?? '', /^a counted repeat/);
  assert.match(regexProblem('(') ?? '', /^not a valid regular expression: Unterminated group$/);
});

test('the JSON Schema for editors describes the file as written', () => {
  const s = jsonSchema() as {
    properties: Record<string, { properties?: Record<string, { default?: unknown; pattern?: string }> }>;
    additionalProperties: boolean;
  };
  assert.equal(s.additionalProperties, false);
  assert.equal(s.properties.limits.properties?.maxRequestBody.default, '10mb');
  assert.equal(s.properties.limits.properties?.headerTimeout.default, '10s');
  assert.ok(s.properties.upstreams);
});
