// Per-request state. One object per request with every field set in the constructor, so V8 keeps
// one shape for all of them.
import type { IncomingMessage } from 'node:http';
import type { Plan } from '../config/compile.ts';
import type { GeoInfo } from '../geo/geoip.ts';
import type { TraceState } from '../observe/tracing.ts';
import type { Route } from '../routing/table.ts';
import type { Target } from '../upstream/target.ts';
import type { Upstream } from '../upstream/upstream.ts';
import type { ProxyError } from './errors.ts';
import type { Responder } from './responder.ts';

/** What goes upstream: built in the `upstreamRequest` stage, changed by `onUpstreamRequest` hooks. */
export interface UpstreamRequest {
  method: string;
  /** Path and query, as sent to the target. */
  path: string;
  /** Flat [name, value, name, value, ...], names lower case. */
  headers: string[];
}

/** A response head on its way to the client; `onResponse` hooks may change it. */
export interface ResponseHead {
  status: number;
  headers: Record<string, string | string[]>;
}

export class RequestContext {
  readonly id: string;
  readonly start: number;
  /** The request as the transport parsed it: our engines' H1Request / H2Request, or node:http's IncomingMessage. */
  readonly req: IncomingMessage;
  /**
   * Where the answer goes: an HTTP/1.1 response, an HTTP/2 stream or a raw socket; after a body
   * middleware's `respond` hook, its filter around that (pipeline/responder.ts ResponderFilter).
   */
  res: Responder;
  /** An upgrade request (WebSocket): the bytes read after its head; null for any other request. */
  readonly upgrade: Buffer | null;
  /** The Plan this request runs on, to the end, even if a reload swaps in another. */
  readonly plan: Plan;
  readonly listener: string;
  readonly scheme: 'http' | 'https';
  /** The TCP peer's address. */
  peer: string;
  /** The peer is a trusted proxy: its forwarding headers are believed. */
  peerTrusted: boolean;
  /** The client's address: the peer, or with a trusted proxy in front, the first untrusted X-Forwarded-For hop. */
  clientIp: string;
  /** The server name the client asked for in its TLS handshake, lower case; '' without TLS or SNI. */
  sni: string;
  /** The Host header as sent (with port), or the authority of an absolute-form target; or ''. */
  hostHeader: string;
  /** Host without port, lower case, from the Host header. */
  host: string;
  /** The normalised path (see path.ts), without the query; `*` for `OPTIONS *`. */
  path: string;
  /** The query string including `?`, or ''. */
  query: string;
  route: Route | undefined;
  target: Target | undefined;
  attempts: number;
  error: ProxyError | undefined;
  status: number;
  bytesOut: number;
  /** Request body bytes received (counted for chunked bodies, Content-Length otherwise). */
  bytesIn: number;
  /** The trace this request belongs to; null when tracing is off. */
  trace: TraceState | null;
  /** mTLS: header name/value pairs describing the client certificate, sent upstream; null without. */
  clientCert: string[] | null;
  upstreamStart: number;
  upstreamMs: number;
  /** Set while an upstream request is running; finish() calls it when the client leaves first. */
  abortUpstream: (() => void) | undefined;
  /** Per-middleware state, keyed by a module-level symbol. */
  vars: Map<symbol, unknown> | undefined;
  /** The upstream chosen in the select stage (the route's, or a side of its split); undefined before. */
  upstream: Upstream | undefined;
  /** The start of the request body, read before forwarding (pipeline/body.ts peekBody); null when none was. */
  body: Buffer | null;
  /** ctx.body is the whole body; false: the rest still streams from `req`. */
  bodyComplete: boolean;
  /** The upstream exchange goes on when the client leaves (a cache fetch others read along). */
  keepUpstream: boolean;
  /** A pathRegex route's capture groups ({match.N}); null otherwise. */
  captures: RegExpExecArray | null;
  #geo: GeoInfo | null | undefined;

  constructor(
    id: string,
    plan: Plan,
    req: IncomingMessage,
    res: Responder,
    upgrade: Buffer | null,
    listener: string,
    scheme: 'http' | 'https',
    start: number,
  ) {
    this.id = id;
    this.plan = plan;
    this.start = start;
    this.req = req;
    this.res = res;
    this.upgrade = upgrade;
    this.listener = listener;
    this.scheme = scheme;
    this.peer = '';
    this.peerTrusted = false;
    this.clientIp = '';
    this.sni = '';
    this.hostHeader = '';
    this.host = '';
    this.path = '/';
    this.query = '';
    this.route = undefined;
    this.target = undefined;
    this.attempts = 0;
    this.error = undefined;
    this.status = 0;
    this.bytesOut = 0;
    this.bytesIn = 0;
    this.trace = null;
    this.clientCert = null;
    this.upstreamStart = 0;
    this.upstreamMs = -1;
    this.abortUpstream = undefined;
    this.vars = undefined;
    this.upstream = undefined;
    this.body = null;
    this.bodyComplete = false;
    this.captures = null;
    this.keepUpstream = false;
    this.#geo = undefined;
  }

  /** The client address's geo data (looked up once, on first use); null without a database or a match. */
  geo(): GeoInfo | null {
    if (this.#geo === undefined) this.#geo = this.plan.geo?.lookup(this.clientIp) ?? null;
    return this.#geo;
  }
}
