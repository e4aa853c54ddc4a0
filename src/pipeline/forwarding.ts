// The `upstreamRequest` stage's header work: hop-by-hop headers out, forwarding headers in.
//
// Forwarding headers are only believed from a trusted proxy. From anyone else X-Forwarded-*,
// X-Real-IP and Forwarded are replaced, never appended to, so a client cannot claim another address.
import type { BlockList } from 'node:net';
import { isIPv6 } from 'node:net';
import { inList } from '../middleware/ipFilter.ts';
import type { RequestContext } from './context.ts';

/** Hop-by-hop headers (RFC 9110 §7.6.1) and other connection-scoped ones; never forwarded. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

/** Request headers we set ourselves, so the client's copies are dropped. */
const OURS: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
  'via',
  'x-request-id',
  'host',
  // Expect is answered by Node's server (100 Continue) before the body is read.
  'expect',
]);

/** Names listed in a Connection header, lower case; null when there are none beyond the usual. */
export function connectionListed(value: string | undefined): Set<string> | null {
  if (value === undefined) return null;
  let set: Set<string> | null = null;
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    set ??= new Set();
    set.add(name);
  }
  return set;
}

export function normalizeIp(addr: string | undefined): string {
  if (addr === undefined) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/**
 * The client's address. Behind trusted proxies it is the rightmost X-Forwarded-For hop that is not
 * itself a trusted proxy (the leftmost when all are), as nginx's real_ip_recursive does.
 */
export function clientAddress(peer: string, trusted: BlockList, xff: string | undefined): string {
  if (xff === undefined) return peer;
  const hops = xff.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i].trim());
    if (hop === '') continue;
    if (i === 0 || !safeInList(trusted, hop)) return hop;
  }
  return peer;
}

function safeInList(list: BlockList, ip: string): boolean {
  try {
    return inList(list, ip);
  } catch {
    return false;
  }
}

/**
 * The header list sent upstream, flat: [name, value, ...]. `upstreamHost` is what to send as
 * Host: the client's or the target's authority.
 */
export function upstreamHeaders(
  ctx: RequestContext,
  upstreamHost: string,
  via: string,
  forwarded: boolean,
): string[] {
  const raw = ctx.req.rawHeaders;
  const trusted = ctx.peerTrusted;
  let listed: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      const more = connectionListed(raw[i + 1]);
      if (more) {
        listed ??= new Set();
        for (const n of more) listed.add(n);
      }
    }
  }
  const out: string[] = [];
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let fwd: string | undefined;
  let viaIn: string | undefined;
  const certNames = ctx.clientCert;
  let cookies: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (name.charCodeAt(0) === 58 /* : */) continue; // HTTP/2 pseudo-headers
    if (HOP_BY_HOP.has(name) || listed?.has(name)) {
      // gRPC (over HTTP/2) needs `te: trailers` end to end; any other TE is hop-by-hop.
      if (name === 'te' && ctx.req.httpVersionMajor === 2 && value.trim().toLowerCase() === 'trailers')
        out.push('te', 'trailers');
      continue;
    }
    if (certNames !== null && isCertHeader(certNames, name)) continue;
    if (name === 'cookie' && ctx.req.httpVersionMajor === 2) {
      // HTTP/2 may split cookies into several fields; HTTP/1.1 wants one (RFC 9113 §8.2.3).
      cookies = cookies === undefined ? value : `${cookies}; ${value}`;
      continue;
    }
    if (OURS.has(name)) {
      if (name === 'via') viaIn = viaIn === undefined ? value : `${viaIn}, ${value}`;
      else if (trusted) {
        if (name === 'x-forwarded-for') xff = xff === undefined ? value : `${xff}, ${value}`;
        else if (name === 'x-forwarded-proto') xfProto ??= value;
        else if (name === 'x-forwarded-host') xfHost ??= value;
        else if (name === 'forwarded') fwd = fwd === undefined ? value : `${fwd}, ${value}`;
      }
      continue;
    }
    out.push(name, value);
  }
  const peer = ctx.peer;
  const host = xfHost ?? ctx.hostHeader;
  out.push(
    'host',
    upstreamHost,
    'x-forwarded-for',
    xff === undefined ? peer : `${xff}, ${peer}`,
    'x-forwarded-proto',
    xfProto ?? ctx.scheme,
    'x-real-ip',
    ctx.clientIp,
    'x-request-id',
    ctx.id,
    'via',
    viaIn === undefined ? `1.1 ${via}` : `${viaIn}, 1.1 ${via}`,
  );
  if (host !== '') out.push('x-forwarded-host', host);
  if (cookies !== undefined) out.push('cookie', cookies);
  if (certNames !== null)
    for (let i = 0; i < certNames.length; i += 2)
      if (certNames[i + 1] !== '') out.push(certNames[i], certNames[i + 1]);
  if (forwarded) {
    const node = isIPv6(peer) ? `"[${peer}]"` : peer;
    const own = `for=${node};proto=${ctx.scheme}${ctx.hostHeader ? `;host=${quoteIfNeeded(ctx.hostHeader)}` : ''}`;
    out.push('forwarded', fwd === undefined ? own : `${fwd}, ${own}`);
  }
  return out;
}

/** The names in a flat [name, value, ...] list of client-certificate headers. */
function isCertHeader(pairs: readonly string[], name: string): boolean {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return true;
  return false;
}

function quoteIfNeeded(v: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/** Whether a Via header already names this proxy: the request went round in a loop. */
export function viaHasLoop(via: string | undefined, pseudonym: string): boolean {
  if (via === undefined) return false;
  for (const part of via.split(',')) {
    const fields = part.trim().split(/\s+/);
    if (fields[1] === pseudonym) return true;
  }
  return false;
}
