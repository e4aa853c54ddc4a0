// Tracing against an OTLP/HTTP receiver the test runs itself, and the access-log formats.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { start, until } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { freePort } from '../helpers/net.ts';
import { origin } from '../helpers/origin.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string } }[];
  status: { code: number };
}

async function otlpReceiver() {
  const spans: OtlpSpan[] = [];
  const posts: { path: string; contentType: string; auth: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      posts.push({
        path: req.url ?? '',
        contentType: String(req.headers['content-type']),
        auth: String(req.headers['x-api-key']),
      });
      const data = JSON.parse(body);
      for (const rs of data.resourceSpans) {
        assert.equal(rs.resource.attributes[0].value.stringValue, 'edge-test');
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/traces`,
    spans,
    posts,
    server,
  };
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? undefined : Number(v.intValue));
};

test('tracing: a SERVER span per request, a CLIENT span per try, traceparent continued and passed upstream', async () => {
  const collector = await otlpReceiver();
  const app = await origin();
  const deadPort = await freePort();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes:
  - { name: api, match: { pathPrefix: /api }, upstream: api }
  - { name: retry, match: { pathPrefix: /retry }, upstream: retry }
upstreams:
  api: { targets: [{ url: ${app.url} }] }
  retry:
    targets: [{ url: "http://127.0.0.1:${deadPort}" }, { url: ${app.url} }]
tracing:
  endpoint: ${collector.url}
  serviceName: edge-test
  headers: { x-api-key: collector-key }
  flushInterval: 50ms
`);
  try {
    // 1. No traceparent: a new trace.
    const fresh = await send(`${gh.url()}/api/one`);
    const seen1 = JSON.parse(fresh.body).headers;
    // 2. A caller's trace: continued, and its tracestate passed on.
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const cont = await send(`${gh.url()}/api/two`, {
      headers: { traceparent: `00-${callerTrace}-${callerSpan}-01`, tracestate: 'vendor=abc' },
    });
    const seen2 = JSON.parse(cont.body).headers;
    // 3. Not sampled by the caller: propagated, but no spans.
    const unsampledTrace = 'a'.repeat(32);
    await send(`${gh.url()}/api/three`, {
      headers: { traceparent: `00-${unsampledTrace}-${'b'.repeat(16)}-00` },
    });
    // 4. A retry: two CLIENT spans under one SERVER span.
    await send(`${gh.url()}/retry/four`);
    // 5. A malformed traceparent starts a new trace.
    const bad = await send(`${gh.url()}/api/five`, {
      headers: { traceparent: `00-${'0'.repeat(32)}-${callerSpan}-01` },
    });
    const seen5 = JSON.parse(bad.body).headers;

    await until(() => collector.spans.filter((s) => s.kind === 2).length >= 4, 5000, 'spans exported');
    assert.equal(collector.posts[0].path, '/v1/traces');
    assert.equal(collector.posts[0].contentType, 'application/json');
    assert.equal(collector.posts[0].auth, 'collector-key');
    const servers = collector.spans.filter((s) => s.kind === 2);
    const clients = collector.spans.filter((s) => s.kind === 3);
    const serverOf = (path: string) => servers.find((s) => attr(s, 'url.path') === path) as OtlpSpan;

    // 1: the upstream got a traceparent naming the CLIENT span, whose parent is the SERVER span.
    const s1 = serverOf('/api/one');
    assert.equal(s1.parentSpanId, undefined, 'a new trace has no parent');
    const [, t1, upstreamSpan1, flags1] = seen1.traceparent.split('-');
    assert.equal(t1, s1.traceId);
    assert.equal(flags1, '01');
    const c1 = clients.find((c) => c.spanId === upstreamSpan1) as OtlpSpan;
    assert.equal(c1.parentSpanId, s1.spanId);
    assert.equal(c1.traceId, s1.traceId);
    assert.equal(attr(c1, 'http.response.status_code'), 200);
    assert.equal(attr(s1, 'http.route'), 'api');
    assert.equal(attr(s1, 'http.response.status_code'), 200);
    assert.equal(attr(s1, 'gatehouse.request_id'), fresh.headers['x-request-id']);
    assert.ok(BigInt(c1.startTimeUnixNano) >= BigInt(s1.startTimeUnixNano));
    assert.ok(BigInt(c1.endTimeUnixNano) <= BigInt(s1.endTimeUnixNano));

    // 2: same trace id; the SERVER span's parent is the caller's span; tracestate passed on.
    const s2 = serverOf('/api/two');
    assert.equal(s2.traceId, callerTrace);
    assert.equal(s2.parentSpanId, callerSpan);
    assert.equal(seen2.traceparent.split('-')[1], callerTrace);
    assert.notEqual(
      seen2.traceparent.split('-')[2],
      callerSpan,
      'the upstream sees our span, not the caller’s',
    );
    assert.equal(seen2.tracestate, 'vendor=abc');

    // 3: nothing exported for an unsampled trace.
    assert.ok(!collector.spans.some((s) => s.traceId === unsampledTrace));

    // 4: two tries, two CLIENT spans, the first an error.
    const s4 = serverOf('/retry/four');
    const tries = clients.filter((c) => c.parentSpanId === s4.spanId);
    assert.equal(tries.length, 2);
    assert.deepEqual(tries.map((c) => attr(c, 'gatehouse.attempt')).sort(), [1, 2]);
    assert.ok(tries.some((c) => attr(c, 'error.type') === 'upstream_connect_failed' && c.status.code === 2));

    // 5: a malformed traceparent is replaced.
    assert.notEqual(seen5.traceparent.split('-')[1], '0'.repeat(32));

    // The access log carries the trace id.
    const entry = gh.log.entries().find((e) => e.path === '/api/one');
    assert.equal(entry?.traceId, s1.traceId);
  } finally {
    await gh.close();
    await app.close();
    collector.server.close();
  }
});

test('access log: JSON with chosen fields, nginx combined, and a template', async () => {
  const app = await origin();
  const run = async (accessLog: string) => {
    const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: ${app.url} }] } }
accessLog: ${accessLog}
`);
    try {
      await send(`${gh.url()}/a/b?token=secret`, {
        headers: { 'user-agent': 'tester "1"', referer: 'http://r.example/' },
      });
      return gh.log.lines[0];
    } finally {
      await gh.close();
    }
  };
  try {
    const json = await run('{ fields: [requestId, status, route, upstreamMs, userAgent] }');
    const parsed = JSON.parse(json);
    assert.deepEqual(Object.keys(parsed), ['requestId', 'status', 'route', 'upstreamMs', 'userAgent']);
    assert.equal(parsed.userAgent, 'tester "1"');
    assert.equal(parsed.status, 200);

    const combined = await run('{ format: combined }');
    assert.match(
      combined,
      /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/a\/b HTTP\/1\.1" 200 \d+ "http:\/\/r\.example\/" "tester \\x221\\x22"\n$/,
    );
    assert.ok(!combined.includes('secret'), 'no query string in the log');

    const template = await run('{ format: template, template: "$status $route $durationMs rid=$requestId" }');
    assert.match(template, /^200 all \d+(\.\d+)? rid=[0-9a-f-]{36}\n$/);
  } finally {
    await app.close();
  }
});
