// The `accept` stage's checks on the request head, for every transport (HTTP/1.1, HTTP/2, h2c,
// upgrades): who the client is (peer, trusted proxies, TLS facts, client certificate), which host
// it asked for (exactly one valid Host, or the authority of an absolute-form target, RFC 9112
// §3.2), and the request target split into a normalised path and the query.
import type { IncomingMessage } from 'node:http';
import type { BlockList, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ListenerPlan } from '../config/compile.ts';
import { inList } from '../middleware/ipFilter.ts';
import type { RequestContext } from './context.ts';
import { clientAddress, normalizeIp } from './forwarding.ts';
import { normalizePath } from './path.ts';

/**
 * uri-host [":" port] (RFC 3986 §3.2.2): an IP literal in brackets, or a reg-name of unreserved,
 * sub-delims and percent-encoded octets. No userinfo (`@`), spaces, `/` or `\`.
 */
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::[0-9]{0,5})?$/;

/** The TCP peer, whether it is a trusted proxy, and so the client's address; TLS facts. */
export function identifyClient(ctx: RequestContext, listener: ListenerPlan): void {
  const req = ctx.req;
  const peer = normalizeIp(req.socket.remoteAddress);
  ctx.peer = peer;
  ctx.peerTrusted = listener.trusted !== null && peer !== '' && inList(listener.trusted, peer);
  ctx.clientIp = ctx.peerTrusted
    ? clientAddress(peer, listener.trusted as BlockList, joined(req.headers['x-forwarded-for']))
    : peer;
  // The headers that describe a client certificate are always ours: whatever the client sent
  // under those names is removed, with or without a certificate, on every listener and transport.
  if (listener.scheme === 'https') {
    const tls = tlsSocketOf(req as never);
    ctx.sni = typeof tls?.servername === 'string' ? tls.servername.toLowerCase() : '';
    if (listener.clientCertHeaders) {
      ctx.clientCert = clientCertificate(tls, listener.clientCertHeaders);
      return;
    }
  }
  ctx.clientCert = (listener.forgedCertHeaders as string[] | undefined) ?? null;
}

/**
 * The host the request is for: `:authority` (HTTP/2), the authority of an absolute-form target
 * (which wins over Host, RFC 9112 §3.2.2), or the one Host header. undefined: malformed (400).
 */
export function requestHost(req: IncomingMessage, url: string): string | undefined {
  const raw = req.rawHeaders;
  let hosts = 0;
  let host = '';
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i];
    if (n.length === 4 && n.toLowerCase() === 'host') {
      hosts++;
      host = raw[i + 1];
    }
  }
  if (hosts > 1) return undefined;
  const authority = req.headers[':authority'] as string | undefined;
  if (authority !== undefined) {
    // HTTP/2: a Host that names another authority is malformed (RFC 9113 §8.3.1).
    if (!HOST_RE.test(authority)) return undefined;
    if (hosts === 1 && host.toLowerCase() !== authority.toLowerCase()) return undefined;
    return authority;
  }
  if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
    const a = absoluteAuthority(url);
    if (a === undefined) return undefined;
    return a;
  }
  if (hosts === 0) return req.httpVersionMajor === 1 && req.httpVersionMinor === 0 ? '' : undefined;
  return HOST_RE.test(host) ? host : undefined;
}

/** `http://example.com:8080/x` → `example.com:8080`; undefined when not http(s) or with userinfo. */
function absoluteAuthority(url: string): string | undefined {
  const m = /^https?:\/\/([^/?#]*)/i.exec(url);
  if (m === null) return undefined;
  const a = m[1];
  if (a === '' || !HOST_RE.test(a)) return undefined;
  return a;
}

/** `Example.COM:8080` → `example.com`; `[::1]:80` → `[::1]`. */
export function hostOnly(host: string): string {
  if (host === '') return '';
  let h = host;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    h = end > 0 ? h.slice(0, end + 1) : h;
  } else {
    const colon = h.lastIndexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

/**
 * Splits the request target into a normalised path and the query ('' or '?...'); `*` (asterisk
 * form) stays `*`; undefined when malformed or when the path must be refused (path.ts).
 */
export function splitTarget(url: string): { path: string; query: string } | undefined {
  let u = url;
  if (u.charCodeAt(0) !== 47 /* / */) {
    if (u === '*') return { path: '*', query: '' };
    // absolute-form (RFC 9112 §3.2.2): keep path and query only
    const m = /^https?:\/\/[^/?#]*/i.exec(u);
    if (m === null) return undefined;
    u = u.slice(m[0].length);
    if (u === '' || u.charCodeAt(0) === 63 /* ? */) u = `/${u}`;
  }
  const q = u.indexOf('?');
  const rawPath = q < 0 ? u : u.slice(0, q);
  const path = normalizePath(rawPath);
  if (path === undefined) return undefined;
  const hash = u.indexOf('#');
  if (hash >= 0) return undefined;
  return { path, query: q < 0 ? '' : u.slice(q) };
}

/** The TLS socket under a request, over HTTP/1.1 or HTTP/2. */
export function tlsSocketOf(req: {
  socket: Socket;
  stream?: { session?: { socket?: Socket } };
}): TLSSocket | undefined {
  const s = (req.stream?.session?.socket ?? req.socket) as TLSSocket | undefined;
  return s !== undefined && typeof s.getPeerCertificate === 'function' ? s : undefined;
}

/** The verified client certificate's subject, SHA-256 fingerprint and verification result. */
function clientCertificate(
  tls: TLSSocket | undefined,
  names: { subject: string; fingerprint: string; verified: string },
): string[] {
  const cert = tls?.getPeerCertificate();
  // Empty values are not sent; the names are still removed from what the client sent.
  if (tls === undefined || cert === undefined || cert === null || cert.raw === undefined)
    return [names.verified, 'NONE', names.subject, '', names.fingerprint, ''];
  // The subject is the client's own text: control characters (CR/LF could add header lines) are
  // written as \xNN, so the value is one line whatever the certificate says.
  const subject = Object.entries(cert.subject ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(',')
    .replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return [
    names.verified,
    tls.authorized ? 'SUCCESS' : 'FAILED',
    names.subject,
    subject,
    names.fingerprint,
    (cert.fingerprint256 ?? '').replace(/:/g, '').toLowerCase(),
  ];
}

/** Bytes of the header block as the client sent it (names, values, ": " and CRLF). */
export function headerBytes(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i].length + 2;
  return n;
}

function joined(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
