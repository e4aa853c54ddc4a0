// Text with placeholders, compiled once when the Plan is built: `https://blog.example.com{path}`,
// `{geo.country}`, `{request.id}`. Redirect and respond routes, the headers middleware and error
// pages use it. An unknown placeholder is refused when the config is validated (placeholderProblem),
// so a typo never reaches a client as literal braces.
import type { RequestContext } from './context.ts';

type Part = string | ((ctx: RequestContext) => string);

export type Template = (ctx: RequestContext) => string;

function header(ctx: RequestContext, name: string): string {
  const v = ctx.req.headers[name];
  return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
}

/** A cookie's value from the request's Cookie header(s), or ''. */
export function cookieValue(cookieHeader: string | string[] | undefined, name: string): string | undefined {
  if (cookieHeader === undefined) return undefined;
  const all = Array.isArray(cookieHeader) ? cookieHeader.join('; ') : cookieHeader;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return undefined;
}

const FIXED: Record<string, (ctx: RequestContext) => string> = {
  path: (c) => c.path,
  query: (c) => c.query,
  uri: (c) => c.path + c.query,
  host: (c) => c.host,
  scheme: (c) => c.scheme,
  method: (c) => c.req.method ?? 'GET',
  route: (c) => c.route?.name ?? '',
  'client.ip': (c) => c.clientIp,
  'request.id': (c) => c.id,
  'geo.country': (c) => c.geo()?.country ?? '',
  'geo.continent': (c) => c.geo()?.continent ?? '',
  'time.msec': () => (Date.now() / 1000).toFixed(3),
  'time.unix': () => String(Math.floor(Date.now() / 1000)),
  'time.iso': () => new Date().toISOString(),
};

function placeholder(name: string): ((ctx: RequestContext) => string) | string {
  const fixed = FIXED[name];
  if (fixed !== undefined) return fixed;
  let m = /^match\.(\d{1,2})$/.exec(name);
  if (m !== null) {
    const i = Number(m[1]);
    return (c) => c.captures?.[i] ?? '';
  }
  m = /^header\.([!#$%&'*+.^_`|~0-9A-Za-z-]+)$/.exec(name);
  if (m !== null) {
    const h = m[1].toLowerCase();
    return (c) => header(c, h);
  }
  m = /^cookie\.([!#$%&'*+.^_`|~0-9A-Za-z-]+)$/.exec(name);
  if (m !== null) {
    const n = m[1];
    return (c) => cookieValue(c.req.headers.cookie, n) ?? '';
  }
  return `unknown placeholder {${name}}`;
}

/** Why a template cannot be compiled (an unknown placeholder, an unclosed brace), or undefined. */
export function placeholderProblem(text: string): string | undefined {
  for (const m of text.matchAll(/\{([^{}]*)\}?/g)) {
    if (!m[0].endsWith('}')) return `unclosed "{" (write {{ for a literal brace)`;
    if (m[0] === '{}') continue;
    const p = placeholder(m[1]);
    if (typeof p === 'string') return p;
  }
  return undefined;
}

/**
 * Compiles `text`; `{{` and `}}` are literal braces. A template without placeholders costs one
 * string per use. Throws for an unknown placeholder (validation refuses those first).
 */
export function compileTemplate(text: string): Template {
  const parts: Part[] = [];
  let lit = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if ((ch === '{' || ch === '}') && text[i + 1] === ch) {
      lit += ch;
      i++;
      continue;
    }
    if (ch !== '{') {
      lit += ch;
      continue;
    }
    const end = text.indexOf('}', i);
    if (end < 0) throw new Error('unclosed "{" in template');
    const p = placeholder(text.slice(i + 1, end));
    if (typeof p === 'string') throw new Error(p);
    if (lit !== '') parts.push(lit);
    lit = '';
    parts.push(p);
    i = end;
  }
  if (lit !== '' || parts.length === 0) parts.push(lit);
  if (parts.length === 1 && typeof parts[0] === 'string') {
    const s = parts[0];
    return () => s;
  }
  return (ctx) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(ctx);
    return out;
  };
}

/** True when the text has a placeholder (so it must be evaluated per request). */
export function hasPlaceholders(text: string): boolean {
  return /\{[^{]/.test(text.replaceAll('{{', ''));
}
