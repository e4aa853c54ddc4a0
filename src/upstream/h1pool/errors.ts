// Errors of the upstream HTTP/1.1 pool. They carry the codes undici uses for the same failures, so
// classifyUpstreamError (pipeline/errors.ts) maps both clients' errors to the same reasons:
//   UND_ERR_CONNECT_TIMEOUT  the TCP connect did not complete in time
//   UND_ERR_HEADERS_TIMEOUT  no response head in time
//   UND_ERR_BODY_TIMEOUT     the response body was idle too long
//   UND_ERR_SOCKET           the connection was reset or closed mid-exchange
//   UND_ERR_RES_CONTENT_LENGTH_MISMATCH, HPE_*, UND_ERR_HEADERS_OVERFLOW  the response was malformed
//   UND_ERR_CLOSED / UND_ERR_DESTROYED  the pool was closed / destroyed
// A failed connect reports the system error as it is (ECONNREFUSED, ENOTFOUND, ...).

export class H1PoolError extends Error {
  readonly code: string;

  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'H1PoolError';
    this.code = code;
  }
}
