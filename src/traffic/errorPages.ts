// Error pages of the operator's own: for Gatehouse's answers (502, 503, 404, 429, ...) and, where a
// page says `intercept: true`, for the upstream's answers of those statuses too. Files are read when
// the Plan is compiled; {status}, {reason} and {request.id} are filled in per answer (HTML-escaped).
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { ErrorPageConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { type OutHeaders, type Responder, ResponderFilter } from '../pipeline/responder.ts';

interface Page {
  readonly html: string;
  readonly intercept: boolean;
}

export class ErrorPages {
  readonly byStatus: ReadonlyMap<number, Page>;
  readonly intercepts: boolean;

  constructor(byStatus: Map<number, Page>) {
    this.byStatus = byStatus;
    this.intercepts = [...byStatus.values()].some((p) => p.intercept);
  }

  /** The page for a status, filled in; undefined when there is none. */
  render(status: number, reason: string, requestId: string): string | undefined {
    const p = this.byStatus.get(status);
    if (p === undefined) return undefined;
    return p.html.replace(/\{(status|reason|request\.id|status\.text)\}/g, (_m, k: string) =>
      escapeHtml(
        k === 'status'
          ? String(status)
          : k === 'reason'
            ? reason
            : k === 'status.text'
              ? (STATUS_CODES[status] ?? '')
              : requestId,
      ),
    );
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Reads the files once; a route's pages come before the top-level ones. Throws `<where>.N.file: reason`. */
export function compileErrorPages(
  lists: readonly { cfg: readonly ErrorPageConfig[]; where: string }[],
  cache: Map<string, string>,
): ErrorPages | null {
  const byStatus = new Map<number, Page>();
  for (const { cfg, where } of lists) {
    cfg.forEach((p, i) => {
      let html = cache.get(p.file);
      if (html === undefined) {
        try {
          html = readFileSync(p.file, 'utf8');
        } catch (e) {
          throw new Error(`${where}.${i}.file: cannot read ${p.file} (${(e as NodeJS.ErrnoException).code})`);
        }
        cache.set(p.file, html);
      }
      for (const s of p.statuses) if (!byStatus.has(s)) byStatus.set(s, { html, intercept: p.intercept });
    });
  }
  return byStatus.size > 0 ? new ErrorPages(byStatus) : null;
}

/** Replaces upstream answers whose status has an intercepting page: the page instead of their body. */
export class InterceptFilter extends ResponderFilter {
  readonly pages: ErrorPages;
  readonly ctx: RequestContext;
  swallow = false;

  constructor(outer: Responder, pages: ErrorPages, ctx: RequestContext) {
    super(outer);
    this.pages = pages;
    this.ctx = ctx;
  }

  override writeHead(status: number, headers: OutHeaders, close?: boolean): void {
    const page = this.pages.byStatus.get(status);
    // Gatehouse's own answers (ctx.error set) already carry their page.
    if (page === undefined || !page.intercept || this.ctx.error !== undefined) {
      this.outer.writeHead(status, headers, close);
      return;
    }
    const html = this.pages.render(status, 'upstream', this.ctx.id) as string;
    const h: OutHeaders = {};
    for (const k of ['cache-control', 'retry-after', 'www-authenticate', 'allow', 'via', 'x-request-id']) {
      const v = headers[k];
      if (v !== undefined) h[k] = v;
    }
    h['content-type'] = 'text/html; charset=utf-8';
    h['content-length'] = String(Buffer.byteLength(html));
    this.swallow = true;
    this.outer.writeHead(status, h, close);
    this.outer.end(this.ctx.req.method === 'HEAD' ? undefined : html);
    this.ctx.bytesOut = Buffer.byteLength(html);
  }
  override write(chunk: Buffer): boolean {
    return this.swallow ? true : this.outer.write(chunk);
  }
  override end(chunk?: Buffer | string): void {
    if (!this.swallow) this.outer.end(chunk);
  }
  override trailers(t: Record<string, string>): boolean {
    return this.swallow ? false : this.outer.trailers(t);
  }
}
