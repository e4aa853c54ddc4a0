// The one place that writes an error page. Short, by Accept (JSON or HTML), with the status, the
// reason and the request id; never a stack trace, an upstream address or the error's detail text.
import { STATUS_CODES } from 'node:http';
import type { ResponseHead } from './context.ts';
import { PROXY_STATUS, type ProxyError } from './errors.ts';
import type { Responder } from './responder.ts';

export interface ErrorPage {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export function errorPage(
  error: ProxyError,
  requestId: string,
  accept: string | undefined,
  proxyName: string,
): ErrorPage {
  const status = error.status;
  const title = STATUS_CODES[status] ?? 'Error';
  const headers: Record<string, string> = {
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  const ps = PROXY_STATUS[error.reason];
  if (ps) headers['proxy-status'] = `${proxyName}; error=${ps}; details="${error.reason}"`;
  if (error.reason === 'no_healthy_target') headers['retry-after'] = '5';
  else if (error.reason === 'upstream_overflow') headers['retry-after'] = '1';
  let body: string;
  if (wantsJson(accept)) {
    headers['content-type'] = 'application/json';
    body = `{"status":${status},"error":${JSON.stringify(title)},"reason":"${error.reason}","requestId":${JSON.stringify(requestId)}}\n`;
  } else {
    headers['content-type'] = 'text/html; charset=utf-8';
    body =
      `<!doctype html><html><head><title>${status} ${title}</title></head><body>` +
      `<h1>${status} ${title}</h1><p>Reason: <code>${error.reason}</code><br>Request id: <code>${escapeHtml(requestId)}</code></p>` +
      '<hr><p>gatehouse</p></body></html>\n';
  }
  headers['content-length'] = String(Buffer.byteLength(body));
  return { status, body, headers };
}

/** JSON when the client asks for JSON before (or instead of) HTML. */
function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = accept.search(/application\/(?:[\w.-]+\+)?json/);
  if (json < 0) return false;
  const html = accept.indexOf('text/html');
  return html < 0 || json < html;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What respondError needs besides the responder and the error. */
export interface ErrorAnswer {
  requestId: string;
  /** The request's Accept: JSON or HTML. */
  accept: string | undefined;
  /** The Via pseudonym, named in Proxy-Status. */
  proxyName: string;
  /** Close the connection after the answer (the request body was not read to its end). */
  close: boolean;
  /** A HEAD request: no body. */
  head: boolean;
  /** Headers of a middleware's refusal (WWW-Authenticate, Retry-After, ...). */
  extra?: Record<string, string>;
  /** The operator's page (errorPages) instead of ours. */
  custom?: string;
  /** Where the body's byte count goes, before the answer ends (the log stage may run inside end()). */
  counter?: { bytesOut: number };
  /** The route's response hooks (securityHeaders, cors, headers): they see Gatehouse's own answers too. */
  onHead?: (head: ResponseHead) => void;
}

/**
 * Writes the error page: the one writer of error answers, for every transport. When the request
 * body was not read to the end (413, 408) the connection cannot be reused, so it is closed after
 * the answer. A response already under way can only be cut.
 */
export function respondError(res: Responder, error: ProxyError, a: ErrorAnswer): number {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return 0;
  }
  const page = errorPage(error, a.requestId, a.accept, a.proxyName);
  if (a.custom !== undefined) {
    // The operator's page (errorPages) in place of ours, with the same status and headers.
    page.body = a.custom;
    page.headers['content-type'] = 'text/html; charset=utf-8';
    page.headers['content-length'] = String(Buffer.byteLength(a.custom));
  }
  if (a.extra !== undefined) Object.assign(page.headers, a.extra);
  const status = page.status;
  let headers: Record<string, string | string[]> = page.headers;
  if (a.onHead !== undefined) {
    // Response middlewares change the headers of Gatehouse's own answers, never their status.
    const h: ResponseHead = { status, headers };
    a.onHead(h);
    headers = h.headers;
    headers['content-length'] = String(Buffer.byteLength(page.body));
  }
  const n = a.head ? 0 : Buffer.byteLength(page.body);
  if (a.counter !== undefined) a.counter.bytesOut = n;
  res.writeHead(status, headers, a.close);
  res.end(a.head ? undefined : page.body);
  return n;
}
