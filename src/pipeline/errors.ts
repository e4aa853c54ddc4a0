// Errors are values: a reason (stable, snake_case, as Envoy's response code details), the status it
// maps to, where it came from, and whether another attempt is safe. The reason is what the access
// log, the error page and the `Proxy-Status` header show; each reason maps to one status here.

export const REASONS = {
  bad_request: 400,
  forbidden: 403,
  route_not_found: 404,
  request_timeout: 408,
  body_too_large: 413,
  uri_too_long: 414,
  rate_limited: 429,
  headers_too_large: 431,
  client_closed: 499,
  internal: 500,
  upstream_connect_failed: 502,
  upstream_reset: 502,
  upstream_protocol_error: 502,
  upstream_tls_failed: 502,
  no_healthy_target: 503,
  upstream_overflow: 503,
  upstream_connect_timeout: 504,
  upstream_timeout: 504,
  loop_detected: 508,
} as const;

export type Reason = keyof typeof REASONS;
export type ErrorSource = 'downstream' | 'upstream' | 'internal';

/** RFC 9209 Proxy-Status error types for the reasons that describe an upstream problem. */
export const PROXY_STATUS: Partial<Record<Reason, string>> = {
  upstream_connect_failed: 'connection_refused',
  upstream_connect_timeout: 'connection_timeout',
  upstream_reset: 'connection_terminated',
  upstream_protocol_error: 'http_protocol_error',
  upstream_tls_failed: 'tls_certificate_error',
  upstream_timeout: 'http_response_timeout',
  no_healthy_target: 'destination_unavailable',
  upstream_overflow: 'connection_limit_reached',
  route_not_found: 'destination_not_found',
  loop_detected: 'proxy_loop_detected',
  body_too_large: 'http_request_error',
};

export class ProxyError extends Error {
  readonly reason: Reason;
  readonly status: number;
  readonly source: ErrorSource;
  /** Another attempt on another target is safe: nothing reached the origin. */
  readonly retryable: boolean;

  constructor(
    reason: Reason,
    detail?: string,
    opts: { cause?: unknown; source?: ErrorSource; retryable?: boolean } = {},
  ) {
    super(detail ?? reason, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProxyError';
    this.reason = reason;
    this.status = REASONS[reason];
    this.source =
      opts.source ??
      (reason.startsWith('upstream_') || reason === 'no_healthy_target' ? 'upstream' : 'downstream');
    this.retryable = opts.retryable ?? false;
  }
}

/** Turns what undici or a socket reports into our reason, by error code, never by message text. */
export function classifyUpstreamError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const code = (err as { code?: string } | null)?.code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new ProxyError('upstream_connect_timeout', 'connect timeout', { cause: err, retryable: true });
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return new ProxyError('upstream_connect_failed', code, { cause: err, retryable: true });
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
      // The target's certificate is not trusted (or TLS failed): nothing was sent, another target may do.
      return new ProxyError('upstream_tls_failed', code, { cause: err, retryable: true });
    default:
      if (typeof code === 'string' && code.startsWith('ERR_SSL_'))
        return new ProxyError('upstream_tls_failed', code, { cause: err, retryable: true });
      if (typeof code === 'string' && code.startsWith('HPE_'))
        return new ProxyError('upstream_protocol_error', code, { cause: err });
      return new ProxyError('internal', 'unexpected upstream error', { cause: err, source: 'internal' });
  }
}
