// Connection limits where connections are accepted: the cap per listener (limits.maxConnections),
// the cap per client address (limits.maxConnectionsPerClient), banned addresses, and the TLS
// handshake timeout, on plain, h2c and TLS listeners (HTTP/1.1 and HTTP/2 on them). A refused
// connection is closed before anything is read from it: its request gets no answer at all.
//
// The last test is the issue's evidence: 20,000 connections against maxConnections: 10000, with
// Gatehouse and the connecting clients in separate processes (20,000 descriptors per process here),
// the cap holding, requests on the other listener answered, and Gatehouse's RSS before and after.
//
// This file is also the child processes of that test (GH_CONNECTIONS_ROLE=gatehouse|clients).
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { Limits } from '../../src/limits/index.ts';
import { serverSockets } from '../helpers/attack.ts';
import { makeCA, makeCert, type Pem, tempDir } from '../helpers/certs.ts';
import { type Running, start, until } from '../helpers/gatehouse.ts';
import { type Origin, origin } from '../helpers/origin.ts';
import { hasCommand } from '../helpers/require.ts';
import {
  get,
  h2request,
  h2session,
  hold,
  holdMany,
  isOpen,
  lifetime,
  percentile,
  portOf,
  type TlsOpts,
} from '../limits/clients.ts';

const role = process.env.GH_CONNECTIONS_ROLE;
if (role === 'gatehouse') await gatehouseChild();
else if (role === 'clients') await clientsChild();
else tests();

/** The Limits of the Gatehouse a test started (Gatehouse#limits once the Runtime carries it). */
function limitsOf(r: Running): Limits {
  return r.gh.limits;
}

function tests(): void {
  const HAVE_OPENSSL = hasCommand('openssl') || process.env.GATEHOUSE_TEST_REQUIRE_ALL === '1';
  const skipTls = HAVE_OPENSSL ? false : 'openssl is not installed (the TLS listener needs a certificate)';
  let echo: Origin;
  let certs: { ca: Pem; server: Pem } | undefined;
  const tlsOf = (): TlsOpts => ({ ca: (certs as { ca: Pem }).ca.cert, servername: 'gh.test' });

  before(async () => {
    echo = await origin();
    if (HAVE_OPENSSL) {
      const dir = tempDir();
      const ca = makeCA(dir);
      certs = { ca, server: makeCert(dir, ca, 'gh.test', ['gh.test']) };
    }
  });
  after(() => echo.close());

  /** plain, h2c and (with openssl) TLS listeners in front of the echo origin, with `limits`. */
  const world = (limits: string, extraListeners = '') =>
    start(`
listeners:
  - { name: plain, address: "127.0.0.1:0" }
  - { name: h2c, address: "127.0.0.1:0", h2c: true }
${
  certs
    ? `  - name: tls
    address: "127.0.0.1:0"
    tls: { certificates: [{ certFile: ${certs.server.certFile}, keyFile: ${certs.server.keyFile} }] }`
    : ''
}
${extraListeners}
limits:
${limits}
routes: [{ name: all, match: { pathPrefix: / }, upstream: echo }]
upstreams: { echo: { targets: [{ url: "${echo.url}" }] } }
`);

  test('maxConnectionsPerClient: one connection too many from an address is closed at once and counted; other addresses are served', async () => {
    const r = await world('  maxConnectionsPerClient: 3');
    const limits = limitsOf(r);
    const held: Socket[] = [];
    try {
      const names = certs ? ['plain', 'h2c', 'tls'] : ['plain', 'h2c'];
      for (const name of names) {
        const url = r.url(name);
        const gate = limits.gates.get(name);
        assert.ok(gate, `listener ${name} has a gate`);
        const tls = name === 'tls' ? tlsOf() : undefined;
        const mine = await holdMany(url, '127.0.0.2', 3);
        held.push(...mine);
        await until(() => gate.openFrom('127.0.0.2') === 3, 5000, `${name}: 3 connections counted`);
        // The fourth connection from 127.0.0.2: closed before a byte of it is read.
        const refused = await get(url, '127.0.0.2', '/x', { tls });
        assert.equal(refused.status, 0, `${name}: no answer on a refused connection: ${refused.raw}`);
        assert.equal(refused.closed, true);
        assert.equal(gate.refusedPerClient, 1, `${name}: counted`);
        if (name !== 'plain') {
          // HTTP/2 (TLS by ALPN, or h2c): the session does not get through either.
          const s = h2session(url, '127.0.0.2', tls);
          const a = await h2request(s, { path: '/x' }, 3000);
          s.destroy();
          assert.equal(a.status, 0, `${name}: HTTP/2 from a capped address: ${a.end}`);
          assert.equal(gate.refusedPerClient, 2);
        }
        // Another address is served meanwhile, on HTTP/1.1 and HTTP/2.
        const other = await get(url, '127.0.0.3', '/x', { tls });
        assert.equal(other.status, 200, `${name}: another address is served`);
        if (name !== 'plain') {
          const s = h2session(url, '127.0.0.3', tls);
          const a = await h2request(s, { path: '/x' });
          s.destroy();
          assert.equal(a.status, 200, `${name}: HTTP/2 from another address`);
        }
        // One of the three closes: the address may open one again.
        mine[0].destroy();
        await until(() => gate.openFrom('127.0.0.2') === 2, 5000, `${name}: the closed one is released`);
        const again = await get(url, '127.0.0.2', '/x', { tls });
        assert.equal(again.status, 200, `${name}: served again once under the cap`);
        await until(() => gate.openFrom('127.0.0.2') === 2, 5000, `${name}: back to 2`);
        for (const s of mine) s.destroy();
        await until(() => gate.openFrom('127.0.0.2') === 0, 5000, `${name}: all released`);
        assert.equal(gate.clients, 0, 'no address is kept once its connections are closed');
      }
      const refusedMetric = limits.metrics().find((m) => m.name === 'gatehouse_connections_refused_total');
      const values = refusedMetric?.values() ?? [];
      assert.deepEqual(
        values
          .filter((v) => v.labels.reason === 'max_connections_per_client')
          .map((v) => [v.labels.listener, v.value]),
        names.map((n) => [n, n === 'plain' ? 1 : 2]),
      );
    } finally {
      for (const s of held) s.destroy();
      await r.close();
    }
  });

  test('maxConnections: the listener cap holds; connections over it are closed at once and counted; other listeners are served', async () => {
    const r = await world('  maxConnections: 20');
    const limits = limitsOf(r);
    const held: Socket[] = [];
    try {
      const names = certs ? ['plain', 'tls'] : ['plain'];
      for (const name of names) {
        const url = r.url(name);
        const port = portOf(url);
        const gate = limits.gates.get(name);
        assert.ok(gate);
        // 20 connections from several addresses fill the listener.
        for (let i = 0; i < 4; i++) held.push(...(await holdMany(url, `127.0.0.${10 + i}`, 5)));
        await until(() => serverSockets(port).length === 20, 5000, `${name}: 20 accepted`);
        // 10 more are closed as they are accepted.
        const extra = await Promise.all(Array.from({ length: 10 }, () => hold(url, '127.0.0.20')));
        await until(() => extra.every((s) => !isOpen(s)), 5000, `${name}: the 10 over the cap closed`);
        assert.equal(gate.refusedMax, 10, `${name}: counted`);
        assert.equal(serverSockets(port).length, 20, `${name}: the cap held`);
        // The h2c listener (its own cap, not reached) is served meanwhile.
        const other = await get(r.url('h2c'), '127.0.0.21', '/x');
        assert.equal(other.status, 200);
        // Five leave: five new ones get in.
        for (const s of held.splice(-5)) s.destroy();
        await until(() => serverSockets(port).length === 15, 5000, `${name}: 15 left`);
        const answered = await get(url, '127.0.0.22', '/x', { tls: name === 'tls' ? tlsOf() : undefined });
        assert.equal(answered.status, 200, `${name}: served once under the cap`);
        for (const s of held.splice(0)) s.destroy();
      }
    } finally {
      for (const s of held) s.destroy();
      await r.close();
    }
  });

  test('a banned address is refused at accept on every listener (HTTP/1.1 and HTTP/2), until lifted; a trusted proxy is not refused at accept', async () => {
    const r = await world(
      '  ban: { after: 100, duration: 1m }',
      '  - { name: proxied, address: "127.0.0.1:0", trustedProxies: [127.0.0.6/32] }',
    );
    const limits = limitsOf(r);
    const bans = limits.bans;
    assert.ok(bans);
    try {
      bans.ban('127.0.0.5', 60_000);
      const names = certs ? ['plain', 'h2c', 'tls'] : ['plain', 'h2c'];
      for (const name of names) {
        const url = r.url(name);
        const tls = name === 'tls' ? tlsOf() : undefined;
        const refused = await get(url, '127.0.0.5', '/x', { tls });
        assert.equal(refused.status, 0, `${name}: a banned address gets no answer: ${refused.raw}`);
        assert.equal(refused.closed, true);
        if (name !== 'plain') {
          const s = h2session(url, '127.0.0.5', tls);
          const a = await h2request(s, { path: '/x' }, 3000);
          s.destroy();
          assert.equal(a.status, 0, `${name}: HTTP/2 from a banned address: ${a.end}`);
        }
        const other = await get(url, '127.0.0.8', '/x', { tls });
        assert.equal(other.status, 200, `${name}: others are served`);
        const gate = limits.gates.get(name);
        assert.equal(gate?.refusedBanned, name === 'plain' ? 1 : 2, `${name}: counted`);
      }
      // A trusted proxy's connections are let in (its clients are judged in the request stage).
      bans.ban('127.0.0.6', 60_000);
      const viaProxy = await get(r.url('proxied'), '127.0.0.6', '/x', { tls: undefined });
      assert.notEqual(viaProxy.status, 0, 'the proxy is not refused at accept');
      assert.equal(limits.gates.get('proxied')?.refusedBanned, 0);
      // Lifted: let in again.
      assert.equal(bans.lift('127.0.0.5'), true);
      for (const name of names) {
        const back = await get(r.url(name), '127.0.0.5', '/x', { tls: name === 'tls' ? tlsOf() : undefined });
        assert.equal(back.status, 200, `${name}: served once the ban is lifted`);
      }
    } finally {
      await r.close();
    }
  });

  test('tlsHandshakeTimeout: 3,000 connections that never send a ClientHello are all closed within it', {
    skip: skipTls,
  }, async (t) => {
    const r = await world('  tlsHandshakeTimeout: 5s\n  headerTimeout: 1s');
    const limits = limitsOf(r);
    const url = r.url('tls');
    const silent: Socket[] = [];
    const port = portOf(url);
    let peak = 0;
    const watch = setInterval(() => {
      peak = Math.max(peak, serverSockets(port).length);
    }, 100);
    try {
      for (let i = 0; i < 3; i++) silent.push(...(await holdMany(url, `127.0.0.${30 + i}`, 1000, 500)));
      await until(() => silent.every((s) => !isOpen(s)), 15_000, 'every silent connection closed');
      clearInterval(watch);
      const lives = silent.map(lifetime);
      t.diagnostic(
        `3,000 silent connections (at most ${peak} open at once in Gatehouse): each closed after ` +
          `${Math.round(Math.min(...lives))}–${Math.round(Math.max(...lives))} ms ` +
          `(p50 ${Math.round(percentile(lives, 50))} ms; tlsHandshakeTimeout 5 s)`,
      );
      // A hang detector, not a timing claim: without the timeout they would stay for minutes.
      assert.ok(Math.max(...lives) < 10_000, 'none outlived the handshake timeout by seconds');
      await until(() => serverSockets(port).length === 0, 5000, 'Gatehouse holds none');
      assert.equal(limits.gates.get('tls')?.handshakeTimeouts, 3000, 'each counted as a handshake timeout');
      // The listener still serves a client that does shake hands.
      const ok = await get(url, '127.0.0.34', '/x', { tls: tlsOf() });
      assert.equal(ok.status, 200);
      // For comparison: a plain listener closes silent connections at headerTimeout.
      const plain = await holdMany(r.url('plain'), '127.0.0.35', 100);
      await until(() => plain.every((s) => !isOpen(s)), 10_000, 'plain silent connections closed');
    } finally {
      clearInterval(watch);
      for (const s of silent) s.destroy();
      await r.close();
    }
  });

  test('20,000 connections against maxConnections: 10000 (separate processes): the cap holds, the other listener answers, RSS stated', async (t) => {
    const hard = Number(readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+\d+\s+(\d+)/)?.[1]);
    t.diagnostic(`open-file limit (hard) per process: ${hard}`);
    const TOTAL = 20_000;
    const CAP = 10_000;
    const CLIENTS = 4;
    const gh = childOf('gatehouse');
    const clients: ChildProcess[] = [];
    try {
      const { urls } = (await ask(gh, {
        cmd: 'start',
        yaml: `
listeners:
  - { name: capped, address: "127.0.0.1:0" }
  - { name: other, address: "127.0.0.1:0" }
limits: { maxConnections: ${CAP}, headerTimeout: 2m, keepAliveTimeout: 2m }
routes: [{ name: all, match: { pathPrefix: / }, upstream: echo }]
upstreams: { echo: { targets: [{ url: "${echo.url}" }] } }
`,
      })) as { urls: Record<string, string> };
      const before = (await ask(gh, { cmd: 'stats' })) as Stats;
      t.diagnostic(`Gatehouse RSS before: ${mb(before.rss)}`);
      const t0 = performance.now();
      for (let i = 0; i < CLIENTS; i++) clients.push(childOf('clients'));
      const reports = (await Promise.all(
        clients.map((c, i) =>
          ask(c, { cmd: 'open', url: urls.capped, from: `127.0.0.${40 + i}`, n: TOTAL / CLIENTS }, 120_000),
        ),
      )) as ClientReport[];
      const connected = reports.reduce((a, r) => a + r.connected, 0);
      const open = reports.reduce((a, r) => a + r.open, 0);
      const closed = reports.reduce((a, r) => a + r.closed, 0);
      t.diagnostic(
        `${connected} connected in ${Math.round(performance.now() - t0)} ms: ${open} held open, ${closed} closed by Gatehouse`,
      );
      const during = (await ask(gh, { cmd: 'stats' })) as Stats;
      t.diagnostic(
        `Gatehouse: ${during.open.capped} open on the capped listener, ${during.refusedMax} refused and counted; RSS ${mb(during.rss)}`,
      );
      assert.equal(connected, TOTAL, 'every connection was accepted by the kernel');
      assert.equal(during.open.capped, CAP, 'the cap holds');
      // The clients' own count may still include a few refused connections whose close has not
      // reached them yet (seen once in CI: 10,053); Gatehouse's count above is the cap itself.
      assert.ok(open >= CAP && open <= CAP + 200, `clients hold the cap (${open} open)`);
      assert.equal(during.refusedMax, TOTAL - CAP, 'every one over the cap refused and counted');
      // Ordinary requests on the other listener, while the capped one is full.
      const times: number[] = [];
      for (let i = 0; i < 50; i++) {
        const a = await get(urls.other, '127.0.0.50', '/x');
        assert.equal(a.status, 200, 'the other listener answers');
        times.push(a.ms);
      }
      t.diagnostic(
        `other listener while the capped one is full: p50 ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms (50 requests)`,
      );
      // The capped listener refuses, then lets one in when one leaves.
      const refused = await get(urls.capped, '127.0.0.51', '/x');
      assert.equal(refused.status, 0);
      await ask(clients[0], { cmd: 'drop', n: 1 });
      await untilAsync(async () => ((await ask(gh, { cmd: 'stats' })) as Stats).open.capped < CAP, 5000);
      const admitted = await get(urls.capped, '127.0.0.51', '/x');
      assert.equal(admitted.status, 200, 'a place freed is taken');
      const afterStats = (await ask(gh, { cmd: 'stats' })) as Stats;
      t.diagnostic(
        `Gatehouse RSS with ${CAP} connections held: ${mb(afterStats.rss)} (before: ${mb(before.rss)})`,
      );
    } finally {
      for (const c of clients) c.kill();
      gh.kill();
      await Promise.all([...clients, gh].map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)));
    }
  });
}

// ---------------------------------------------------------------- child processes

interface Stats {
  rss: number;
  refusedMax: number;
  open: Record<string, number>;
}

interface ClientReport {
  connected: number;
  open: number;
  closed: number;
  failed: number;
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

function childOf(kind: 'gatehouse' | 'clients'): ChildProcess {
  return fork(import.meta.filename, [], {
    env: { ...process.env, GH_CONNECTIONS_ROLE: kind },
    execArgv: process.execArgv.filter((a) => !a.startsWith('--test')),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

let asked = 0;
function ask(child: ChildProcess, msg: Record<string, unknown>, ms = 30_000): Promise<unknown> {
  const id = ++asked;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not answer ${JSON.stringify(msg.cmd)}`)), ms);
    const onMessage = (m: { id: number; reply?: unknown; error?: string }) => {
      if (m.id !== id) return;
      child.off('message', onMessage);
      clearTimeout(timer);
      if (m.error) reject(new Error(m.error));
      else resolve(m.reply);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    child.send({ ...msg, id });
  });
}

async function untilAsync(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function serve(handle: (m: Record<string, unknown>) => Promise<unknown>): void {
  process.on('message', (m: Record<string, unknown>) => {
    handle(m).then(
      (reply) => process.send?.({ id: m.id, reply }),
      (err: Error) => process.send?.({ id: m.id, error: err.stack ?? err.message }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Runs Gatehouse in this process and reports on it. */
async function gatehouseChild(): Promise<void> {
  let r: Running | undefined;
  serve(async (m) => {
    if (m.cmd === 'start') {
      r = await start(m.yaml as string);
      return { urls: { capped: r.url('capped'), other: r.url('other') } };
    }
    const run = r as Running;
    const limits = limitsOf(run);
    return {
      rss: process.memoryUsage().rss,
      refusedMax: limits.gates.get('capped')?.refusedMax ?? -1,
      open: {
        capped: serverSockets(portOf(run.url('capped'))).length,
        other: serverSockets(portOf(run.url('other'))).length,
      },
    } satisfies Stats;
  });
}

/** Opens connections from one address and reports how many Gatehouse kept open. */
async function clientsChild(): Promise<void> {
  const sockets: Socket[] = [];
  serve(async (m) => {
    if (m.cmd === 'drop') {
      for (const s of sockets.filter(isOpen).slice(0, m.n as number)) s.destroy();
      return {};
    }
    const n = m.n as number;
    let failed = 0;
    for (let i = 0; i < n; i += 250) {
      const batch = await Promise.allSettled(
        Array.from({ length: Math.min(250, n - i) }, () => hold(m.url as string, m.from as string)),
      );
      for (const b of batch) {
        if (b.status === 'fulfilled') sockets.push(b.value);
        else failed++;
      }
    }
    // Wait until Gatehouse has closed what it refuses (the count stops changing).
    let last = -1;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const open = sockets.filter(isOpen).length;
      if (open === last) break;
      last = open;
    }
    return {
      connected: sockets.length,
      open: last,
      closed: sockets.length - last,
      failed,
    } satisfies ClientReport;
  });
}
