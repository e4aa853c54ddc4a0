// Errors are values: a reason (stable, snake_case, as Envoy's response code details), the status it
// maps to, where it came from, and which retry condition it is. The reason is what the access log,
// the error page and the `Proxy-Status` header show; each reason has one row in the table below.

/**
 * The `retry.on` condition an upstream failure falls under (upstream/retry.ts decides whether it
 * is retried). `connect-failure`: nothing reached the target, so any request may go elsewhere.
 */
export type RetryOn = 'connect-failure' | 'reset' | 'timeout';

interface ReasonRow {
  readonly status: number;
  /** The RFC 9209 Proxy-Status error type, for reasons that describe a problem on the way upstream. */
  readonly proxyStatus?: string;
  readonly retryOn?: RetryOn;
}

/** One row per reason: its status, its Proxy-Status error type, its retry condition. */
export const ERRORS = {
  bad_request: { status: 400 },
  /** Authentication missing or failed (basicAuth, jwt, apiKey); the middleware adds WWW-Authenticate. */
  unauthorized: { status: 401 },
  forbidden: { status: 403 },
  /** The WAF's anomaly score reached its threshold. */
  waf_blocked: { status: 403 },
  /** The client address is banned for now (limits.ban). */
  banned: { status: 403 },
  route_not_found: { status: 404, proxyStatus: 'destination_not_found' },
  /** A static route has no such file (or it may not be shown: dotfiles, outside the root). */
  file_not_found: { status: 404 },
  method_not_allowed: { status: 405 },
  request_timeout: { status: 408 },
  body_too_large: { status: 413, proxyStatus: 'http_request_error' },
  uri_too_long: { status: 414 },
  expectation_failed: { status: 417 },
  range_not_satisfiable: { status: 416 },
  rate_limited: { status: 429 },
  /** The client has limits.upstreamConnectionsPerClient requests in flight upstream already. */
  client_upstream_limit: { status: 429 },
  headers_too_large: { status: 431 },
  client_closed: { status: 499 },
  internal: { status: 500 },
  /** The faultInjection middleware answered instead of the upstream (its status may differ: see ctx.error). */
  fault_injected: { status: 503 },
  not_implemented: { status: 501 },
  upstream_connect_failed: { status: 502, proxyStatus: 'connection_refused', retryOn: 'connect-failure' },
  upstream_reset: { status: 502, proxyStatus: 'connection_terminated', retryOn: 'reset' },
  upstream_protocol_error: { status: 502, proxyStatus: 'http_protocol_error' },
  // The target's certificate is not trusted (or TLS failed): nothing was sent, another target may do.
  upstream_tls_failed: { status: 502, proxyStatus: 'tls_certificate_error', retryOn: 'connect-failure' },
  no_healthy_target: { status: 503, proxyStatus: 'destination_unavailable' },
  upstream_overflow: { status: 503, proxyStatus: 'connection_limit_reached' },
  /** forwardAuth: the auth service did not answer in time or could not be reached (fail closed). */
  auth_unavailable: { status: 503 },
  /** rateLimit store: redis with onStoreError: deny, and Redis did not answer. */
  store_unavailable: { status: 503 },
  upstream_connect_timeout: { status: 504, proxyStatus: 'connection_timeout', retryOn: 'connect-failure' },
  upstream_timeout: { status: 504, proxyStatus: 'http_response_timeout', retryOn: 'timeout' },
  version_not_supported: { status: 505 },
  loop_detected: { status: 508, proxyStatus: 'proxy_loop_detected' },
} as const satisfies Record<string, ReasonRow>;

export type Reason = keyof typeof ERRORS;
export type ErrorSource = 'downstream' | 'upstream' | 'internal';

const column = <T>(pick: (row: ReasonRow) => T | undefined): Partial<Record<Reason, T>> => {
  const out: Partial<Record<Reason, T>> = {};
  for (const [reason, row] of Object.entries(ERRORS) as [Reason, ReasonRow][]) {
    const v = pick(row);
    if (v !== undefined) out[reason] = v;
  }
  return out;
};

/** Reason → status. */
export const REASONS = column((r) => r.status) as { readonly [R in Reason]: (typeof ERRORS)[R]['status'] };
/** Reason → RFC 9209 Proxy-Status error type, for the reasons that have one. */
export const PROXY_STATUS: Partial<Record<Reason, string>> = column((r) => r.proxyStatus);
/** Reason → retry condition, for the reasons that may be retried. */
export const RETRY_ON: Partial<Record<Reason, RetryOn>> = column((r) => r.retryOn);

export class ProxyError extends Error {
  readonly reason: Reason;
  readonly status: number;
  readonly source: ErrorSource;

  constructor(reason: Reason, detail?: string, opts: { cause?: unknown; source?: ErrorSource } = {}) {
    super(detail ?? reason, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProxyError';
    this.reason = reason;
    this.status = REASONS[reason];
    this.source =
      opts.source ??
      (reason.startsWith('upstream_') || reason === 'no_healthy_target' ? 'upstream' : 'downstream');
  }
}

/** Turns what undici or a socket reports into our reason, by error code, never by message text. */
export function classifyUpstreamError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const code = (err as { code?: string } | null)?.code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new ProxyError('upstream_connect_timeout', 'connect timeout', { cause: err });
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return new ProxyError('upstream_connect_failed', code, { cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new ProxyError('upstream_timeout', 'no response headers in time', { cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return new ProxyError('upstream_timeout', 'response body idle too long', { cause: err });
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
      return new ProxyError('upstream_reset', 'connection closed by upstream', { cause: err });
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_HEADERS_OVERFLOW':
      return new ProxyError('upstream_protocol_error', code, { cause: err });
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'EPROTO':
      return new ProxyError('upstream_tls_failed', code, { cause: err });
    default:
      // undici's HTTPParserError carries no code of its own: it is known by its class name.
      if (code === undefined && (err as Error | null)?.name === 'HTTPParserError')
        return new ProxyError('upstream_protocol_error', 'HTTPParserError', { cause: err });
      if (typeof code === 'string' && code.startsWith('ERR_SSL_'))
        return new ProxyError('upstream_tls_failed', code, { cause: err });
      if (typeof code === 'string' && code.startsWith('HPE_'))
        return new ProxyError('upstream_protocol_error', code, { cause: err });
      return new ProxyError('internal', 'unexpected upstream error', { cause: err, source: 'internal' });
  }
}
