// TLS termination with certificates made at test time: SNI by exact name, wildcard and default
// (checked by fingerprint), rotation on disk, protocol floor, HTTP/2 and HTTP/1.1 alike, HSTS and
// the HTTPS redirect, client certificates (mTLS) and SNI routing.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { makeCA, makeCert, type Pem, tempDir } from '../helpers/certs.ts';
import { start, until } from '../helpers/gatehouse.ts';
import { send } from '../helpers/http.ts';
import { origin } from '../helpers/origin.ts';
import { needCommand } from '../helpers/require.ts';

const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

/** The certificate the server presents for `servername` (undefined: no SNI). */
function presented(
  port: number,
  ca: Pem,
  servername: string | undefined,
  extra: object = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      { host: '127.0.0.1', port, ca: ca.cert, servername, rejectUnauthorized: false, ...extra },
      () => {
        const c = s.getPeerX509Certificate();
        s.destroy();
        resolve(c?.fingerprint256 ?? '');
      },
    );
    s.on('error', reject);
  });
}

/** One HTTP/2 request on its own session: over TLS with `ca`, or cleartext (h2c) with `ca` null. */
function h2get(
  url: string,
  ca: Pem | null,
  servername: string,
  path: string,
  headers: Record<string, string> = {},
) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const session = h2connect(url, ca === null ? {} : { ca: ca.cert, servername });
      session.on('error', reject);
      const req = session.request({ ':path': path, ':authority': servername, ...headers });
      let body = '';
      let head: Record<string, unknown> = {};
      req.on('response', (h) => {
        head = h;
      });
      req.setEncoding('utf8');
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        session.close();
        resolve({ status: Number(head[':status']), headers: head, body });
      });
      req.on('error', reject);
      req.end();
    },
  );
}

test('TLS: SNI picks the certificate (exact, wildcard, default), files are re-read, TLS 1.1 is refused', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with it')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const def = makeCert(dir, ca, 'default.example.test', ['default.example.test']);
  const exact = makeCert(dir, ca, 'a.example.test', ['a.example.test'], { file: 'a' });
  const wild = makeCert(dir, ca, 'wild', ['*.wild.example.test']);
  const app = await origin();
  const gh = await start(`
listeners:
  - name: secure
    address: "127.0.0.1:0"
    tls:
      certificates:
        - { certFile: ${def.certFile}, keyFile: ${def.keyFile} }
        - { certFile: ${exact.certFile}, keyFile: ${exact.keyFile} }
        - { certFile: ${wild.certFile}, keyFile: ${wild.keyFile} }
      reloadInterval: 100ms
admin: { address: "127.0.0.1:0", token: tls-test-admin-token-0123 }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: ${app.url} }] } }
`);
  const port = Number(new URL(gh.url()).port);
  try {
    assert.match(gh.url(), /^https:/);
    assert.equal(await presented(port, ca, 'a.example.test'), fp(exact.cert));
    assert.equal(await presented(port, ca, 'A.Example.Test'), fp(exact.cert), 'names are case-insensitive');
    assert.equal(await presented(port, ca, 'x.wild.example.test'), fp(wild.cert));
    assert.equal(
      await presented(port, ca, 'y.x.wild.example.test'),
      fp(def.cert),
      'a wildcard covers one label',
    );
    assert.equal(await presented(port, ca, 'unknown.test'), fp(def.cert));
    assert.equal(await presented(port, ca, undefined), fp(def.cert));
    await assert.rejects(
      presented(port, ca, 'a.example.test', { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }),
    );
    // Client-initiated renegotiation is refused (a DoS lever on TLS 1.2).
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect(
        { host: '127.0.0.1', port, ca: ca.cert, servername: 'a.example.test', maxVersion: 'TLSv1.2' },
        () => {
          s.on('error', () => {});
          s.renegotiate({}, (err) => {
            s.destroy();
            if (err) resolve();
            else reject(new Error('renegotiation was accepted'));
          });
        },
      );
      s.on('error', () => resolve());
    });
    // The handshakes, good and refused, are counted in /metrics.
    const metrics = await request(`${gh.gh.admin?.url}/metrics`, {
      headers: { authorization: 'Bearer tls-test-admin-token-0123' },
    });
    const text = await metrics.body.text();
    const count = (result: string) =>
      Number(
        new RegExp(`gatehouse_tls_handshakes_total\\{listener="secure",result="${result}"\\} (\\d+)`).exec(
          text,
        )?.[1],
      );
    assert.ok(count('ok') >= 1, `ok handshakes: ${count('ok')}`);
    assert.ok(count('failed') >= 1, `failed handshakes: ${count('failed')}`);

    // A request over a kept-alive connection, then the files change on disk.
    const agent = new Agent({ connect: { ca: ca.cert, servername: 'a.example.test' } });
    const before = await request(`${gh.url()}/x`, { dispatcher: agent });
    assert.equal(before.statusCode, 200);
    await before.body.dump();
    const renewed = makeCert(dir, ca, 'a.example.test', ['a.example.test'], { file: 'a-new' });
    copyFileSync(renewed.keyFile, exact.keyFile);
    copyFileSync(renewed.certFile, exact.certFile);
    await until(() => gh.messages.some((m) => m.includes('certificates reloaded')), 5000, 'reload');
    assert.equal(
      await presented(port, ca, 'a.example.test'),
      fp(renewed.cert),
      'new handshakes get the new certificate',
    );
    const after = await request(`${gh.url()}/y`, { dispatcher: agent });
    assert.equal(after.statusCode, 200, 'the open connection was not dropped');
    await after.body.dump();
    await agent.close();
  } finally {
    await gh.close();
    await app.close();
  }
});

test('HTTP/2 and HTTP/1.1 clients get the same routing and the same forwarding headers', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with it')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const cert = makeCert(dir, ca, 'app.example.test', ['app.example.test', 'api.example.test']);
  const app = await origin();
  const gh = await start(`
listeners:
  - name: secure
    address: "127.0.0.1:0"
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }], hsts: { maxAge: 31536000, includeSubDomains: true } }
  - name: plain
    address: "127.0.0.1:0"
    redirectToHttps: { port: 8443 }
routes:
  - { name: api, priority: 10, match: { sni: api.example.test, pathPrefix: /v1 }, stripPrefix: true, upstream: u }
  - { name: site, match: { hosts: [app.example.test, api.example.test] }, upstream: u }
upstreams: { u: { targets: [{ url: ${app.url} }] } }
`);
  try {
    // undici offers h2 by ALPN unless told not to.
    const agent = new Agent({ allowH2: false, connect: { ca: ca.cert, servername: 'api.example.test' } });
    const h1 = await request(`${gh.url('secure')}/v1/items?q=1`, {
      dispatcher: agent,
      headers: { host: 'api.example.test', cookie: 'a=1; b=2', 'x-forwarded-for': '6.6.6.6' },
    });
    const h1body = JSON.parse(await h1.body.text());
    const h2 = await h2get(gh.url('secure'), ca, 'api.example.test', '/v1/items?q=1', {
      cookie: 'a=1',
      'x-forwarded-for': '6.6.6.6',
    });
    const h2body = JSON.parse(h2.body);
    assert.equal(h1.statusCode, 200);
    assert.equal(h2.status, 200);
    assert.equal(h1body.url, '/items?q=1');
    assert.equal(h2body.url, '/items?q=1', 'same route (SNI + prefix) and the same rewrite');
    const pick = (h: Record<string, string>) => ({
      host: h.host,
      xfp: h['x-forwarded-proto'],
      xff: h['x-forwarded-for'],
      xfh: h['x-forwarded-host'],
      realIp: h['x-real-ip'],
      via: h.via,
      pseudo: Object.keys(h).filter((k) => k.startsWith(':')),
    });
    assert.deepEqual(pick(h2body.headers), pick(h1body.headers));
    assert.equal(h1body.headers['x-forwarded-proto'], 'https');
    assert.equal(h1body.headers['x-forwarded-for'], '127.0.0.1', 'untrusted X-Forwarded-For is replaced');
    assert.equal(h2body.headers.cookie, 'a=1');
    assert.equal(h1.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    assert.equal(h2.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    const [l1, l2] = gh.log.entries();
    assert.equal(l1.route, 'api');
    assert.equal(l2.route, 'api');
    assert.equal(l1.protocol, 'HTTP/1.1');
    assert.equal(l2.protocol, 'HTTP/2.0');
    // Without the SNI name, the same path does not match the SNI route.
    const other = await request(`${gh.url('secure')}/v1/items`, {
      dispatcher: new Agent({ connect: { ca: ca.cert, servername: 'app.example.test' } }),
      headers: { host: 'app.example.test' },
    });
    assert.equal(JSON.parse(await other.body.text()).url, '/v1/items');
    assert.equal(gh.log.entries().at(-1)?.route, 'site');
    // Errors over HTTP/2 are the same page: a Host that contradicts :authority is malformed.
    const bad = await h2get(gh.url('secure'), ca, 'api.example.test', '/x', {
      host: 'nowhere.test',
      accept: 'application/json',
    });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).reason, 'bad_request');
    assert.ok(bad.headers['x-request-id']);

    // The plain listener redirects: 301 for GET, 308 for POST, host, path and query kept.
    const get = await send(`${gh.url('plain')}/a/b?c=d`, { headers: { host: 'app.example.test:8080' } });
    assert.equal(get.status, 301);
    assert.equal(get.headers.location, 'https://app.example.test:8443/a/b?c=d');
    const post = await send(`${gh.url('plain')}/form`, {
      method: 'POST',
      body: 'x',
      headers: { host: 'app.example.test' },
    });
    assert.equal(post.status, 308);
    await agent.close();
  } finally {
    await gh.close();
    await app.close();
  }
});

test('mTLS: a required client certificate, its details passed upstream in headers the client cannot forge', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with it')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const clientCa = makeCA(dir, 'Client CA');
  const server = makeCert(dir, ca, 'mtls.example.test', ['mtls.example.test']);
  const client = makeCert(dir, clientCa, 'client-7', [], { client: true });
  const stranger = makeCert(dir, makeCA(dir, 'Other CA'), 'stranger', [], { client: true });
  const app = await origin();
  const gh = await start(`
listeners:
  - name: secure
    address: "127.0.0.1:0"
    tls:
      certificates: [{ certFile: ${server.certFile}, keyFile: ${server.keyFile} }]
      clientAuth: { mode: require, caFile: ${clientCa.certFile} }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: ${app.url} }] } }
`);
  try {
    const withCert = (pem?: Pem) =>
      new Agent({
        connect: { ca: ca.cert, servername: 'mtls.example.test', cert: pem?.cert, key: pem?.key },
      });
    const ok = await request(`${gh.url()}/x`, {
      dispatcher: withCert(client),
      headers: { 'x-client-cert-subject': 'CN=admin', 'x-client-cert-verified': 'SUCCESS' },
    });
    const seen = JSON.parse(await ok.body.text()).headers;
    assert.equal(seen['x-client-cert-verified'], 'SUCCESS');
    assert.equal(seen['x-client-cert-subject'], 'CN=client-7,O=Gatehouse Tests');
    assert.equal(seen['x-client-cert-sha256'], fp(client.cert).replace(/:/g, '').toLowerCase());
    await assert.rejects(
      request(`${gh.url()}/x`, { dispatcher: withCert() }),
      'no certificate: no handshake',
    );
    await assert.rejects(
      request(`${gh.url()}/x`, { dispatcher: withCert(stranger) }),
      'a certificate from another CA',
    );
  } finally {
    await gh.close();
    await app.close();
  }
});

test('h2c: cleartext HTTP/2 with prior knowledge and HTTP/1.1 on the same listener', async () => {
  const app = await origin();
  const gh = await start(`
listeners: [{ name: web, address: "127.0.0.1:0", h2c: true }]
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: ${app.url} }] } }
`);
  try {
    const reply = await h2get(gh.url(), null, 'h2c.example.test', '/over-h2c');
    assert.equal(reply.status, 200);
    const seen = JSON.parse(reply.body);
    assert.equal(seen.url, '/over-h2c');
    assert.equal(seen.headers.host, 'h2c.example.test');
    const h1 = await send(`${gh.url()}/over-h1`);
    assert.equal(h1.status, 200);
    assert.deepEqual(
      gh.log.entries().map((e) => e.protocol),
      ['HTTP/2.0', 'HTTP/1.1'],
    );
  } finally {
    await gh.close();
    await app.close();
  }
});

test('TLS session resumption by ticket, and HTTP/2 rapid reset (CVE-2023-44487) ends the connection', async (t) => {
  if (!needCommand(t, 'openssl', 'the TLS tests make their certificates with it')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const cert = makeCert(dir, ca, 'r.example.test', ['r.example.test']);
  const app = await origin();
  const gh = await start(`
listeners:
  - name: secure
    address: "127.0.0.1:0"
    tls: { certificates: [{ certFile: ${cert.certFile}, keyFile: ${cert.keyFile} }] }
    http2Limits: { resetBurst: 50, resetRate: 10 }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: ${app.url} }] } }
`);
  const port = Number(new URL(gh.url()).port);
  try {
    // A ticket from the first connection resumes the second without a full handshake.
    const first = await new Promise<Buffer>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: ca.cert, servername: 'r.example.test' });
      s.once('session', (session: Buffer) => {
        s.destroy();
        resolve(session);
      });
      s.on('error', reject);
    });
    const reused = await new Promise<boolean>((resolve, reject) => {
      const s = tlsConnect(
        { host: '127.0.0.1', port, ca: ca.cert, servername: 'r.example.test', session: first },
        () => {
          const r = s.isSessionReused();
          s.destroy();
          resolve(r);
        },
      );
      s.on('error', reject);
    });
    assert.equal(reused, true, 'the session was resumed');

    // Open and cancel streams as fast as possible: past the reset budget the server ends the session.
    const session = h2connect(gh.url(), { ca: ca.cert, servername: 'r.example.test' });
    session.on('error', () => {});
    let goaway = false;
    session.on('goaway', () => {
      goaway = true;
    });
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    await new Promise<void>((resolve) => session.once('connect', () => resolve()));
    for (let i = 0; i < 500 && !session.closed && !session.destroyed; i++) {
      const req = session.request({ ':path': `/r${i}`, ':authority': 'r.example.test' });
      req.on('error', () => {});
      req.close(8); // NGHTTP2_CANCEL
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
    assert.ok(goaway || session.destroyed || session.closed, 'the server ended the connection');
    session.destroy();
    // Well-behaved clients are unaffected.
    const agent = new Agent({ connect: { ca: ca.cert, servername: 'r.example.test' } });
    const ok = await request(`${gh.url()}/after`, { dispatcher: agent });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
    await agent.close();
  } finally {
    await gh.close();
    await app.close();
  }
});
