// TLS listeners: certificates chosen by SNI from the names in each certificate (subjectAltName, or
// the subject's CN without one), exact names before `*.` wildcards (one label, RFC 6125), the first
// certificate as the default. Files are re-read when they change, without a restart and without
// touching open connections (new handshakes get the new context). TLS 1.2 and 1.3 only, Mozilla's
// "intermediate" cipher list with the server's preference, session tickets whose keys rotate.
// HTTP/2 and HTTP/1.1 share the listener through ALPN (Node's http2 server with allowHTTP1).
import { constants, createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, statSync, unwatchFile, watchFile } from 'node:fs';
import { Server as HttpServer } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { Config, LimitsConfig } from '../config/schema.ts';
import { http2Options, trackSessions } from './http.ts';
import { OcspStapler, ocspUrl, pemBlocks } from './ocsp.ts';

type ListenerConfig = Config['listeners'][number];
type TlsConfig = NonNullable<ListenerConfig['tls']>;

/** Mozilla's intermediate configuration (TLS 1.2 suites; TLS 1.3 suites are OpenSSL's defaults). */
export const CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Session ticket keys are replaced this often (resumption across a rotation falls back to a full handshake). */
const TICKET_ROTATION_MS = 12 * 60 * 60 * 1000;

interface Entry {
  names: string[];
  /** Staples OCSP answers for this certificate, when it names a responder and its file holds the issuer. */
  ocsp: OcspStapler | null;
  cert: string;
  key: string;
  context: SecureContext;
  /** SHA-256 of the certificate (DER), for the log. */
  fingerprint: string;
}

/** The names a certificate is valid for: DNS entries of its subjectAltName, else its CN. */
export function certificateNames(pem: string): string[] {
  const cert = new X509Certificate(pem);
  const san = cert.subjectAltName;
  if (san) {
    const names = san
      .split(/,\s*/)
      .filter((p) => p.startsWith('DNS:'))
      .map((p) => p.slice(4).toLowerCase());
    if (names.length > 0) return names;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

/** Whether `name` is covered by `pattern` (`*.example.com` covers exactly one more label). */
export function nameMatches(pattern: string, name: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === name;
  const suffix = pattern.slice(1);
  if (!name.endsWith(suffix)) return false;
  const label = name.slice(0, name.length - suffix.length);
  return label.length > 0 && !label.includes('.');
}

export class CertificateStore {
  readonly #certs: TlsConfig['certificates'];
  readonly #options: Parameters<typeof createSecureContext>[0];
  readonly #say: (msg: string) => void;
  readonly #listener: string;
  #entries: Entry[] = [];
  readonly #ocsp: boolean;
  #watchers: string[] = [];
  #mtimes = new Map<string, number>();

  constructor(listener: string, cfg: TlsConfig, say: (msg: string) => void, clientCa?: string) {
    this.#listener = listener;
    this.#certs = cfg.certificates;
    this.#ocsp = cfg.ocspStapling;
    this.#say = say;
    this.#options = {
      minVersion: cfg.minVersion,
      ciphers: CIPHERS,
      honorCipherOrder: true,
      ecdhCurve: 'X25519:P-256:P-384',
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_CIPHER_SERVER_PREFERENCE,
      // Every SNI context verifies client certificates against the same CAs as the default one.
      ca: clientCa,
    };
    this.#entries = this.#load();
  }

  get defaultContext(): SecureContext {
    return this.#entries[0].context;
  }

  /** Options for the default certificate (the server's own context, used without SNI). */
  contextOptions(): { cert: string; key: string } & Parameters<typeof createSecureContext>[0] {
    const e = this.#entries[0];
    return { ...this.#options, cert: e.cert, key: e.key };
  }

  /** Each certificate's names and SHA-256 fingerprint, for the log and the admin API. */
  describe(): { names: string[]; sha256: string }[] {
    return this.#entries.map((e) => ({ names: e.names, sha256: e.fingerprint }));
  }

  /** The context for a server name: exact names first, then wildcards, then the default. */
  contextFor(servername: string): SecureContext {
    const name = servername.toLowerCase();
    for (const e of this.#entries) if (e.names.includes(name)) return e.context;
    for (const e of this.#entries)
      if (e.names.some((p) => p.startsWith('*.') && nameMatches(p, name))) return e.context;
    return this.defaultContext;
  }

  readonly SNICallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.contextFor(servername));
  };

  /** Re-reads the files when their modification time changes; a broken pair keeps the old one. */
  watch(intervalMs: number, onReload: () => void): void {
    if (intervalMs <= 0) return;
    for (const c of this.#certs) {
      for (const file of [c.certFile, c.keyFile]) {
        this.#mtimes.set(file, mtime(file));
        watchFile(file, { interval: intervalMs, persistent: false }, () => {
          const now = mtime(file);
          if (now === this.#mtimes.get(file)) return;
          this.#mtimes.set(file, now);
          try {
            const old = this.#entries;
            this.#entries = this.#load();
            for (const e of old) e.ocsp?.stop();
            onReload();
            this.#say(
              `listener ${this.#listener}: certificates reloaded (${this.#entries.map((e) => `${e.names.join(',')} sha256:${e.fingerprint.slice(0, 16)}`).join('; ')})`,
            );
          } catch (err) {
            this.#say(
              `listener ${this.#listener}: certificate reload failed, keeping the old ones: ${(err as Error).message}`,
            );
          }
        });
        this.#watchers.push(file);
      }
    }
  }

  /** The stapled OCSP answer for the certificate a handshake is using (DER), or null. */
  ocspResponse(cert: Buffer): Buffer | null {
    for (const e of this.#entries) if (e.ocsp?.raw.equals(cert)) return e.ocsp.response;
    return null;
  }

  close(): void {
    for (const e of this.#entries) e.ocsp?.stop();
    for (const f of this.#watchers) unwatchFile(f);
    this.#watchers = [];
  }

  #load(): Entry[] {
    return this.#certs.map((c) => {
      const cert = readFileSync(c.certFile, 'utf8');
      const key = readFileSync(c.keyFile, 'utf8');
      const context = createSecureContext({ ...this.#options, cert, key });
      const x = new X509Certificate(cert);
      const chain = pemBlocks(cert);
      const url = ocspUrl(x);
      const names = certificateNames(cert);
      let ocsp: OcspStapler | null = null;
      if (this.#ocsp && url !== undefined) {
        if (chain.length < 2)
          this.#say(
            `listener ${this.#listener}: ${names[0]} names an OCSP responder, but ${c.certFile} has no issuer certificate after it: not stapling`,
          );
        else
          ocsp = new OcspStapler(
            chain[0],
            chain[1],
            url,
            `listener ${this.#listener}: ${names[0]}`,
            this.#say,
          );
      }
      return {
        ocsp,
        names,
        cert,
        key,
        context,
        fingerprint: createHash('sha256').update(x.raw).digest('hex'),
      };
    });
  }
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

export interface TlsFrontend {
  server: Http2SecureServer;
  store: CertificateStore;
  closeIdle(): void;
  closeAll(): void;
  stop(): void;
}

/**
 * A TLS listener serving HTTP/2 and HTTP/1.1 (by ALPN). The caller wires the handlers: HTTP/2
 * streams (server/h2 serveStreams), HTTP/1.1 to our engine (`http1`) or node:http's 'request'.
 * HTTP/1.1 connections get the same limits as a plain listener (Node's HTTP/1 options, set on the server).
 */
export function createTlsFrontend(
  l: ListenerConfig,
  limits: LimitsConfig,
  say: (msg: string) => void,
  clientCa: string | undefined,
  /** Our HTTP/1.1 engine's entry, when the listener uses it; without, node:http serves HTTP/1.1. */
  http1?: (socket: TLSSocket) => void,
): TlsFrontend {
  const cfg = l.tls as TlsConfig;
  const store = new CertificateStore(l.name, cfg, say, clientCa);
  const auth = cfg.clientAuth;
  const server = createSecureServer({
    ...store.contextOptions(),
    allowHTTP1: true,
    ALPNProtocols: cfg.http2 ? ['h2', 'http/1.1'] : ['http/1.1'],
    SNICallback: store.SNICallback,
    minVersion: cfg.minVersion,
    ciphers: CIPHERS,
    honorCipherOrder: true,
    ecdhCurve: 'X25519:P-256:P-384',
    requestCert: auth !== undefined,
    rejectUnauthorized: auth?.mode === 'require',
    ca: clientCa,
    maxSessionMemory: 10,
    // A connection that does not complete its handshake in time is closed ('tlsClientError' below).
    handshakeTimeout: limits.tlsHandshakeTimeout,
    ...http2Options(limits, l.http2Limits),
  } as Parameters<typeof createSecureServer>[0]);
  // HTTP/1.1 on this server uses Node's HTTP/1 connection handling, which reads these properties.
  const h1 = server as unknown as Record<string, unknown>;
  h1.maxHeaderSize = limits.maxRequestHeaders + limits.maxUriLength;
  h1.headersTimeout = limits.headerTimeout;
  h1.requestTimeout = 0;
  h1.keepAliveTimeout = limits.keepAliveTimeout;
  // A missing Host is refused by the accept stage (one error writer, one log line), not by Node.
  h1.requireHostHeader = false;
  h1.connectionsCheckingInterval = Math.max(100, Math.min(1000, Math.floor(limits.headerTimeout / 4)));
  server.on(
    'OCSPRequest',
    (cert: Buffer, _issuer: Buffer, cb: (err: Error | null, resp: Buffer | null) => void) =>
      cb(null, store.ocspResponse(cert)),
  );
  // Client-initiated renegotiation (TLS 1.2) only costs the server CPU. OpenSSL refuses it with a
  // no_renegotiation alert (SSL_OP_NO_RENEGOTIATION, in every context); Node's own switch as well.
  server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  // A failed or timed-out handshake ends the connection (with a 'clientError' listener on the
  // server, Node would otherwise leave a socket whose handshake timed out open).
  server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
  if (http1 !== undefined) {
    // Our HTTP/1.1 engine takes every connection that did not choose h2 by ALPN; node:http2 keeps h2.
    const [h2] = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeListener('secureConnection', h2);
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') h2.call(server, socket);
      else http1(socket);
    });
  }
  const sessions = trackSessions(server, limits.keepAliveTimeout);
  server.setTimeout(0);
  const rotate = () => server.setTicketKeys(randomBytes(48));
  rotate();
  const ticketTimer = setInterval(rotate, TICKET_ROTATION_MS);
  ticketTimer.unref();
  store.watch(cfg.reloadInterval, () => server.setSecureContext(store.contextOptions()));
  return {
    server,
    store,
    closeIdle() {
      HttpServer.prototype.closeIdleConnections.call(server);
      for (const s of sessions) s.close();
    },
    closeAll() {
      HttpServer.prototype.closeAllConnections.call(server);
      for (const s of sessions) s.destroy();
    },
    stop() {
      clearInterval(ticketTimer);
      store.close();
    },
  };
}
