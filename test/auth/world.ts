// The world the authentication end-to-end tests run in: Gatehouse with three listeners (HTTP/1.1 and
// h2c without TLS, HTTP/2 and HTTP/1.1 over TLS by ALPN) in front of an echo origin (which records
// every request it gets) and a WebSocket echo origin under /ws, with the auth middleware under test
// on both routes. `ask` (test/helpers/attack.ts) sends one request on any transport: h1, h1s, h2,
// h2c, and upgrades (ws, wss) whose answer is the echo origin's plain 200 when they get through.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { ALL, type Answer, type Ask, ask, type Listeners, type Transport } from '../helpers/attack.ts';
import { makeCA, makeCert, type Pem, tempDir } from '../helpers/certs.ts';
import { type Running, start } from '../helpers/gatehouse.ts';
import { type Origin, origin } from '../helpers/origin.ts';
import { hasCommand } from '../helpers/require.ts';

export { ALL, type Answer, type Transport };

// The TLS listener needs certificates made with openssl: without it the tests skip (and fail
// under GATEHOUSE_TEST_REQUIRE_ALL=1, as helpers/require.ts does).
export const HAVE_OPENSSL = hasCommand('openssl') || process.env.GATEHOUSE_TEST_REQUIRE_ALL === '1';
export const skipWithoutOpenssl = HAVE_OPENSSL ? false : 'openssl is not installed (TLS certificates)';

let certs: { dir: string; ca: Pem; server: Pem } | undefined;
export function getCerts() {
  if (certs) return certs;
  const dir = tempDir();
  const ca = makeCA(dir);
  const server = makeCert(dir, ca, 'gh.test', ['gh.test']);
  certs = { dir, ca, server };
  return certs;
}

export interface World {
  gh: Running;
  L: Listeners;
  /** The echo origin: every request it got, in order. */
  up: Origin;
  /** Handshakes the WebSocket origin accepted (their headers). */
  upgrades: Record<string, string | string[] | undefined>[];
  /** One request on a transport; the echo origin's JSON answer is in `body`. */
  ask(t: Transport, a: Ask): Promise<Answer>;
  /** ws:// or wss:// base URL for the WebSocket route (/ws). */
  wsUrl(tls?: boolean): string;
  close(): Promise<void>;
}

/**
 * Starts the world with `middlewares` (YAML lines under `middlewares:`, indented by two) and the
 * routes using `use` (a middleware name, or a YAML list body such as `a, b`). `extra`: more YAML.
 */
export async function world(middlewares: string, use: string, extra = ''): Promise<World> {
  const c = getCerts();
  const up = await origin();
  const upgrades: World['upgrades'] = [];
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    upgrades.push(req.headers);
    ws.on('message', (d) => ws.send(d));
  });
  const wsPort = (wss.address() as AddressInfo).port;
  let gh: Running;
  try {
    gh = await start(`
listeners:
  - { name: plain, address: 127.0.0.1:0 }
  - { name: h2c, address: 127.0.0.1:0, h2c: true }
  - name: tls
    address: 127.0.0.1:0
    tls:
      certificates: [{ certFile: ${c.server.certFile}, keyFile: ${c.server.keyFile} }]
middlewares:
${middlewares}
routes:
  - { name: ws, match: { pathPrefix: /ws }, middlewares: [${use}], upstream: wsup }
  - { name: app, middlewares: [${use}], upstream: app }
upstreams:
  app: { targets: [{ url: "${up.url}" }] }
  wsup: { targets: [{ url: "http://127.0.0.1:${wsPort}" }] }
${extra}`);
  } catch (err) {
    await up.close();
    wss.close();
    throw err;
  }
  const L: Listeners = {
    plain: gh.url('plain'),
    h2c: gh.url('h2c'),
    tls: gh.url('tls'),
    ca: c.ca.cert,
    servername: 'gh.test',
  };
  return {
    gh,
    L,
    up,
    upgrades,
    ask: (t, a) => ask(L, t, { host: 'gh.test', ...a }),
    wsUrl: (tls = false) => (tls ? L.tls.replace('https:', 'wss:') : L.plain.replace('http:', 'ws:')),
    async close() {
      await gh.close();
      await up.close();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

/**
 * Opens a real WebSocket (the `ws` client) and echoes one message: 'echo:<text>' on success, or
 * 'status:<code>' when the handshake is answered with something other than 101.
 */
export function wsEcho(url: string, headers: Record<string, string>, ca?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers,
      ca,
      servername: ca ? 'gh.test' : undefined,
    } as ConstructorParameters<typeof WebSocket>[2]);
    ws.once('open', () => {
      ws.once('message', (d) => {
        ws.close();
        resolve(`echo:${String(d)}`);
      });
      ws.send('hello');
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(`status:${res.statusCode}`);
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** What the echo origin answered (the request as it reached the upstream), from an answer's body. */
export function echoed(a: Answer): { url: string; headers: Record<string, string | string[]> } {
  return JSON.parse(a.body);
}

/** The HTTP/2 transports report an answer's headers lower case, HTTP/1.1 ones as written: one view. */
export function header(a: Answer, name: string): string | undefined {
  for (const [k, v] of Object.entries(a.headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** The transports an upgrade runs on. */
export const UPGRADES: readonly Transport[] = ['ws', 'wss'];
