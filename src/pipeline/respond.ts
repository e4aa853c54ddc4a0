// The one place that writes an error page. Short, by Accept (JSON or HTML), with the status, the
// reason and the request id; never a stack trace, an upstream address or the error's detail text.
import { STATUS_CODES } from 'node:http';
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

/**
 * Writes the error page: the one writer of error answers, for every transport. When the request
 * body was not read to the end (413, 408) the connection cannot be reused, so it is closed after
 * the answer. A response already under way can only be cut.
 */
export function respondError(
  res: Responder,
  error: ProxyError,
  requestId: string,
  accept: string | undefined,
  proxyName: string,
  close: boolean,
  head: boolean,
  extra?: Record<string, string>,
  custom?: string,
  counter?: { bytesOut: number },
): number {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return 0;
  }
  const page = errorPage(error, requestId, accept, proxyName);
  if (custom !== undefined) {
    // The operator's page (errorPages) in place of ours, with the same status and headers.
    page.body = custom;
    page.headers['content-type'] = 'text/html; charset=utf-8';
    page.headers['content-length'] = String(Buffer.byteLength(custom));
  }
  if (extra !== undefined) Object.assign(page.headers, extra);
  const n = head ? 0 : Buffer.byteLength(page.body);
  // Before end(): the log stage may run inside it.
  if (counter !== undefined) counter.bytesOut = n;
  res.writeHead(page.status, page.headers, close);
  res.end(head ? undefined : page.body);
  return n;
}
