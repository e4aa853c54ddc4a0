// Upstreams over TLS (verified against a CA, a servername, mTLS, the loudly named skip), HTTP/2 to
// the target, and gRPC end to end (grpc-js on both sides): unary and streaming calls, and the
// status and message that travel in trailers.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createSecureServer } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { makeCA, makeCert, type Pem, tempDir } from '../helpers/certs.ts';
import { start } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { needCommand } from '../helpers/require.ts';

async function listen(server: {
  listen: (p: number, h: string) => unknown;
  address: () => unknown;
}): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server as never, 'listening');
  return (server.address() as { port: number }).port;
}

test('https:// targets: verified by CA and name, mTLS to the upstream, the skip option, HTTP/2 by ALPN', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with it')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const otherCa = makeCA(dir, 'Other CA');
  const originCert = makeCert(dir, ca, 'origin.internal', ['origin.internal']);
  const gwClient = makeCert(dir, ca, 'gatehouse-client', [], { client: true });
  const seen: { cn: string | undefined; proto: string }[] = [];
  const h1 = createHttpsServer(
    { cert: originCert.cert, key: originCert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push({ cn: peer?.subject?.CN as string | undefined, proto: req.httpVersion });
      res.end('secure hello');
    },
  );
  const h1Port = await listen(h1);
  const h2 = createSecureServer(
    { cert: originCert.cert, key: originCert.key, allowHTTP1: true },
    (req, res) => {
      res.end(`over ${req.httpVersion}`);
    },
  );
  const h2Port = await listen(h2);
  const upstream = (name: string, port: number, tls: string) => `
  ${name}:
    targets: [{ url: "https://127.0.0.1:${port}" }]
    tls: ${tls}`;
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
routes:
  - { name: verified, match: { pathPrefix: /verified }, upstream: verified }
  - { name: mtls, match: { pathPrefix: /mtls }, upstream: mtls }
  - { name: wrongca, match: { pathPrefix: /wrongca }, upstream: wrongca }
  - { name: wrongname, match: { pathPrefix: /wrongname }, upstream: wrongname }
  - { name: skip, match: { pathPrefix: /skip }, upstream: skip }
  - { name: h2, match: { pathPrefix: /h2 }, upstream: h2 }
upstreams:${upstream('verified', h1Port, `{ caFile: ${ca.certFile}, servername: origin.internal }`)}${upstream(
    'mtls',
    h1Port,
    `{ caFile: ${ca.certFile}, servername: origin.internal, certFile: ${gwClient.certFile}, keyFile: ${gwClient.keyFile} }`,
  )}${upstream('wrongca', h1Port, `{ caFile: ${otherCa.certFile}, servername: origin.internal }`)}${upstream(
    'wrongname',
    h1Port,
    `{ caFile: ${ca.certFile}, servername: not-the-origin.internal }`,
  )}${upstream('skip', h1Port, '{ insecureSkipVerify: true }')}${upstream('h2', h2Port, `{ caFile: ${ca.certFile}, servername: origin.internal }`)}
`);
  try {
    const ok = await send(`${gh.url()}/verified`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'secure hello');
    assert.equal(seen.at(-1)?.cn, undefined, 'no client certificate unless configured');
    assert.equal((await send(`${gh.url()}/mtls`)).status, 200);
    assert.equal(seen.at(-1)?.cn, 'gatehouse-client', 'the upstream saw our client certificate');
    for (const path of ['/wrongca', '/wrongname']) {
      const r = await send(`${gh.url()}${path}`, { headers: { accept: 'application/json' } });
      assert.equal(r.status, 502, path);
      assert.equal(JSON.parse(r.body).reason, 'upstream_tls_failed', path);
    }
    assert.equal((await send(`${gh.url()}/skip`)).status, 200);
    assert.equal((await send(`${gh.url()}/h2`)).body, 'over 2.0', 'HTTP/2 to the target, chosen by ALPN');
  } finally {
    await gh.close();
    h1.close();
    h2.close();
  }
});

// A gRPC service without .proto files: JSON messages, the methods described by hand.
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()),
};
const service: grpc.ServiceDefinition = {
  Echo: {
    path: '/test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
  Count: {
    path: '/test.Echo/Count',
    requestStream: false,
    responseStream: true,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
  Sum: {
    path: '/test.Echo/Sum',
    requestStream: true,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

test('gRPC through Gatehouse: unary, server and client streaming, status and message in trailers', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with it')) return;
  const server = new grpc.Server();
  server.addService(service, {
    Echo: (call: grpc.ServerUnaryCall<{ text: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (call.request.text === 'missing')
        return cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
      const md = new grpc.Metadata();
      md.set('x-served-by', 'origin');
      call.sendMetadata(md);
      const trailer = new grpc.Metadata();
      trailer.set('x-checksum', 'abc123');
      cb(
        null,
        { text: call.request.text, forwardedProto: call.metadata.get('x-forwarded-proto')[0] },
        trailer,
      );
    },
    Count: (call: grpc.ServerWritableStream<{ n: number }, unknown>) => {
      for (let i = 1; i <= call.request.n; i++) call.write({ i });
      call.end();
    },
    Sum: (call: grpc.ServerReadableStream<{ n: number }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      let total = 0;
      call.on('data', (m: { n: number }) => {
        total += m.n;
      });
      call.on('end', () => cb(null, { total }));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const dir = tempDir();
  const ca: Pem = makeCA(dir);
  const cert = makeCert(dir, ca, 'grpc.example.test', ['grpc.example.test']);
  const gh = await start(`
listeners:
  - name: secure
    address: "127.0.0.1:0"
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }] }
routes: [{ name: grpc, match: { pathPrefix: /test.Echo/ }, upstream: grpc }]
upstreams: { grpc: { targets: [{ url: "h2c://127.0.0.1:${port}" }] } }
`);
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = new Client(
    `127.0.0.1:${new URL(gh.url()).port}`,
    grpc.credentials.createSsl(Buffer.from(ca.cert)),
    { 'grpc.ssl_target_name_override': 'grpc.example.test', 'grpc.default_authority': 'grpc.example.test' },
  ) as unknown as Record<string, (...args: unknown[]) => unknown>;
  type Reply = {
    value?: { text: string; forwardedProto: string };
    err?: grpc.ServiceError;
    md?: grpc.Metadata;
    trailer?: grpc.Metadata;
  };
  const unary = (text: string) =>
    new Promise<Reply>((resolve) => {
      const reply: Reply = {};
      let pending = 2;
      const settle = () => --pending === 0 && resolve(reply);
      const call = client.Echo({ text }, (err: grpc.ServiceError | null, value: Reply['value']) => {
        reply.value = value;
        reply.err = err ?? undefined;
        settle();
      }) as grpc.ClientUnaryCall;
      call.on('metadata', (m) => {
        reply.md = m;
      });
      call.on('status', (st: grpc.StatusObject) => {
        reply.trailer = st.metadata;
        settle();
      });
    });
  try {
    const ok = await unary('hello');
    assert.equal(ok.err, undefined);
    assert.equal(ok.value?.text, 'hello');
    assert.equal(ok.value?.forwardedProto, 'https', 'forwarding headers reach gRPC metadata');
    assert.equal(ok.md?.get('x-served-by')[0], 'origin', 'initial metadata (headers)');
    assert.equal(ok.trailer?.get('x-checksum')[0], 'abc123', 'trailing metadata (trailers)');

    const bad = await unary('missing');
    assert.equal(bad.err?.code, grpc.status.NOT_FOUND);
    assert.equal(bad.err?.details, 'no such thing', 'grpc-message made it through');

    const stream = client.Count({ n: 5 }) as grpc.ClientReadableStream<{ i: number }>;
    const got: number[] = [];
    stream.on('data', (m: { i: number }) => got.push(m.i));
    const [status] = (await once(stream, 'status')) as [grpc.StatusObject];
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
    assert.equal(status.code, grpc.status.OK);

    const sum = await new Promise<{ total: number }>((resolve, reject) => {
      const call = client.Sum((err: grpc.ServiceError | null, v: { total: number }) =>
        err ? reject(err) : resolve(v),
      ) as grpc.ClientWritableStream<{
        n: number;
      }>;
      for (const n of [1, 2, 3, 4]) call.write({ n });
      call.end();
    });
    assert.equal(sum.total, 10);
    const lines = gh.log.entries();
    assert.ok(lines.every((e) => e.route === 'grpc' && e.protocol === 'HTTP/2.0'));
  } finally {
    (client as unknown as grpc.Client).close();
    await gh.close();
    server.forceShutdown();
  }
});
