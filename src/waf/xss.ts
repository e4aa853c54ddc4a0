// Cross-site scripting by reading the value the way a browser's HTML tokenizer would: `<` and a
// letter open a tag, attributes are separated by whitespace or `/`, values are quoted or bare,
// `=` may start a name. Then: tags that run or load content, on* handlers, script URL schemes
// (after removing the whitespace and control characters browsers ignore in them), srcdoc, script
// in CSS; outside tags: a break out of an attribute into a handler, a javascript: value, calls
// of the sinks a probe uses (alert, prompt, eval, ...).
//
// Every scan moves forward only: a tag parse continues where the last one stopped, and an
// unterminated quoted value is recognised in O(1) from the last index of that quote, so the
// work stays linear in the value's length.
import {
  XSS_ACTIVE_TAG,
  XSS_ANY_TAG,
  XSS_ATTR_BREAK,
  XSS_DOM,
  XSS_EVENT_ATTR,
  XSS_HANDLER_WEAK,
  XSS_JS_SINK,
  XSS_JS_URI,
  XSS_SCRIPT,
  XSS_SRCDOC,
  XSS_STYLE,
  XSS_TAG,
  XSS_TEMPLATE,
} from './rules.ts';
import type { Hits } from './scan.ts';

const ACTIVE = new Set([
  'iframe',
  'frame',
  'frameset',
  'object',
  'embed',
  'applet',
  'base',
  'meta',
  'link',
  'svg',
  'math',
  'style',
  'xml',
  'isindex',
  'import',
  'bgsound',
  'layer',
  'ilayer',
  'portal',
  'xss',
  'set',
  'animate',
  'handler',
  'listener',
]);

/** Element names of HTML (and a few of SVG) for the paranoia-2 tag rule. */
const ELEMENTS = new Set(
  (
    'a abbr address area article aside audio b bdi bdo blockquote body br button canvas caption cite code col ' +
    'colgroup data datalist dd del details dfn dialog div dl dt em fieldset figcaption figure font footer form ' +
    'h1 h2 h3 h4 h5 h6 head header hr html i img input ins kbd keygen label legend li main map mark marquee menu ' +
    'meter nav noscript ol optgroup option output p param picture pre progress q rp rt ruby s samp section select ' +
    'slot small source span strong sub summary sup table tbody td template textarea tfoot th thead time title tr ' +
    'track u ul var video wbr image plaintext listing xmp noembed noframes'
  ).split(' '),
);

/** Attributes whose value is a URL a browser may load or navigate to. */
const URL_ATTRS = new Set([
  'src',
  'href',
  'action',
  'formaction',
  'data',
  'background',
  'dynsrc',
  'lowsrc',
  'xlink:href',
  'from',
  'to',
  'values',
  'poster',
  'code',
  'codebase',
  'content',
  'ping',
  'cite',
  'longdesc',
  'usemap',
  'manifest',
  'icon',
  'profile',
  'datasrc',
  'by',
  'archive',
]);

/** Functions a probe calls to prove script runs (`write`, `writeln` after `document.`, `print` after a `.`). */
const SINKS = new Set([
  'alert',
  'prompt',
  'confirm',
  'eval',
  'settimeout',
  'setinterval',
  'atob',
  'execscript',
  'msgbox',
  'fromcharcode',
  'showmodaldialog',
  'showmodelessdialog',
  'importscripts',
  'write',
  'writeln',
  'print',
]);

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 12 || c === 13;
}

function isAlpha(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

function isIdent(c: number): boolean {
  return isAlpha(c) || (c >= 48 && c <= 57) || c === 95 || c === 36;
}

/** `v` with every character ≤ 0x20 removed (browsers ignore them in a URL scheme), lower case. */
function squeeze(v: string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) <= 32) {
      out += v.slice(last, i);
      last = i + 1;
    }
  }
  return last === 0 ? v : out + v.slice(last);
}

/** A URL that runs script when loaded or followed. */
function scriptUrl(v: string): boolean {
  const s = squeeze(v);
  let i = 0;
  // meta refresh content: "0;url=javascript:..."; also ";URL=" chains
  const u = s.lastIndexOf('url=');
  if (u >= 0) i = u + 4;
  while (i < s.length && (s.charCodeAt(i) === 39 || s.charCodeAt(i) === 34)) i++;
  return (
    s.startsWith('javascript:', i) ||
    s.startsWith('vbscript:', i) ||
    s.startsWith('livescript:', i) ||
    s.startsWith('mocha:', i) ||
    (s.startsWith('data:', i) &&
      (s.startsWith('text/html', i + 5) ||
        s.startsWith('text/javascript', i + 5) ||
        s.startsWith('application/javascript', i + 5) ||
        s.startsWith('application/x-javascript', i + 5) ||
        s.startsWith('image/svg', i + 5) ||
        s.startsWith('text/xml', i + 5) ||
        s.startsWith('application/xhtml', i + 5) ||
        s.charCodeAt(i + 5) === 44 /* data:,alert(1) */ ||
        s.startsWith(';base64,', i + 5) ||
        s.startsWith('text/x-', i + 5)))
  );
}

/** CSS with script in it: comments and backslash escapes removed first. */
function scriptCss(v: string): boolean {
  let s = v;
  if (s.indexOf('/*') >= 0) {
    let out = '';
    let last = 0;
    for (let i = s.indexOf('/*'); i >= 0; i = s.indexOf('/*', last)) {
      const e = s.indexOf('*/', i + 2);
      out += s.slice(last, i);
      last = e < 0 ? s.length : e + 2;
    }
    s = out + s.slice(last);
  }
  if (s.indexOf('\\') >= 0) s = cssUnescape(s);
  s = squeeze(s);
  return (
    s.includes('expression(') ||
    s.includes('-moz-binding') ||
    s.includes('behavior:') ||
    s.includes('behaviour:') ||
    s.includes('javascript:') ||
    s.includes('vbscript:') ||
    s.includes('@import')
  );
}

/** CSS escapes: `\6a` (1–6 hex digits and an optional space) and `\x` (the character itself). */
function cssUnescape(s: string): string {
  let out = '';
  let last = 0;
  for (let i = s.indexOf('\\'); i >= 0; i = s.indexOf('\\', last)) {
    out += s.slice(last, i);
    let j = i + 1;
    let v = 0;
    let k = 0;
    for (; k < 6 && j < s.length; k++, j++) {
      const c = s.charCodeAt(j);
      const h = c >= 48 && c <= 57 ? c - 48 : (c | 0x20) >= 97 && (c | 0x20) <= 102 ? (c | 0x20) - 87 : -1;
      if (h < 0) break;
      v = v * 16 + h;
    }
    if (k > 0) {
      if (isSpace(s.charCodeAt(j))) j++;
      out += v > 0 && v <= 0x10ffff && (v < 0xd800 || v > 0xdfff) ? String.fromCodePoint(v) : '';
      last = j;
    } else {
      last = j; // `\x` → `x`
    }
  }
  return (out + s.slice(last)).toLowerCase();
}

/** An attribute name that is an event handler: on + 3 or more letters (names may carry junk after). */
function handlerName(s: string, a: number, b: number): boolean {
  if (b - a < 5 || s.charCodeAt(a) !== 111 || s.charCodeAt(a + 1) !== 110) return false;
  return isAlpha(s.charCodeAt(a + 2)) && isAlpha(s.charCodeAt(a + 3)) && isAlpha(s.charCodeAt(a + 4));
}

/**
 * Tags: from each `<` followed by a letter (or `/` and a letter), the tag name and its attributes
 * as an HTML tokenizer reads them. Returns nothing; reports to `hits`.
 */
function scanTags(s: string, pl: number, hits: Hits): void {
  const len = s.length;
  const lastSq = s.lastIndexOf("'");
  const lastDq = s.lastIndexOf('"');
  const lastBq = s.lastIndexOf('`');
  let i = s.indexOf('<');
  while (i >= 0 && i < len - 1) {
    let j = i + 1;
    let c = s.charCodeAt(j);
    if (c === 47 /* / */) {
      j++;
      c = s.charCodeAt(j);
    }
    if (c === 33 /* ! */ && pl >= 3) {
      hits.hit(XSS_ANY_TAG, i, Math.min(len, i + 4));
    }
    if (!isAlpha(c)) {
      i = s.indexOf('<', i + 1);
      continue;
    }
    const nameStart = j;
    while (j < len) {
      c = s.charCodeAt(j);
      if (isSpace(c) || c === 47 || c === 62) break;
      j++;
    }
    const name = s.slice(nameStart, j);
    const closing = s.charCodeAt(i + 1) === 47;
    if (!closing) {
      if (name === 'script' || name.startsWith('script:')) hits.hit(XSS_SCRIPT, i, j);
      else if (ACTIVE.has(name) || name.startsWith('svg:') || name.startsWith('math:'))
        hits.hit(XSS_ACTIVE_TAG, i, j);
    }
    if (pl >= 3) hits.hit(XSS_ANY_TAG, i, j);
    // attributes
    let attrs = 0;
    let styleTag = name === 'style';
    for (;;) {
      while (j < len && (isSpace(s.charCodeAt(j)) || s.charCodeAt(j) === 47)) j++;
      if (j >= len || s.charCodeAt(j) === 62) break;
      const a = j;
      j++; // the first character may be `=`
      while (j < len) {
        c = s.charCodeAt(j);
        if (isSpace(c) || c === 47 || c === 62 || c === 61) break;
        j++;
      }
      const b = j;
      while (j < len && isSpace(s.charCodeAt(j))) j++;
      let va = -1;
      let vb = -1;
      if (s.charCodeAt(j) === 61 /* = */) {
        j++;
        while (j < len && isSpace(s.charCodeAt(j))) j++;
        const q = s.charCodeAt(j);
        if (q === 34 || q === 39 || q === 96) {
          const lastQ = q === 34 ? lastDq : q === 39 ? lastSq : lastBq;
          if (lastQ > j) {
            const e = s.indexOf(String.fromCharCode(q), j + 1);
            va = j + 1;
            vb = e;
            j = e + 1;
          } else {
            // unterminated: the value runs to the end; what follows is still looked at as tags
            va = j + 1;
            vb = len;
            j = j + 1;
          }
        } else {
          va = j;
          while (j < len && !isSpace(s.charCodeAt(j)) && s.charCodeAt(j) !== 62) j++;
          vb = j;
        }
      }
      if (closing) {
        if (vb === len) break;
        continue;
      }
      attrs++;
      if (va >= 0 && handlerName(s, a, b)) hits.hit(XSS_EVENT_ATTR, a, Math.min(vb, a + 64));
      const attr = b - a <= 12 ? s.slice(a, b) : '';
      if (va >= 0) {
        const value = s.slice(va, vb);
        if (attr === 'srcdoc') hits.hit(XSS_SRCDOC, a, Math.min(vb, a + 64));
        else if (attr === 'style') {
          if (scriptCss(value)) hits.hit(XSS_STYLE, a, Math.min(vb, a + 64));
        } else if ((URL_ATTRS.has(attr) || attr.endsWith(':href')) && scriptUrl(value))
          hits.hit(XSS_JS_URI, a, Math.min(vb, a + 64));
        else if (attr === 'type' && name === 'style' && value.includes('javascript')) styleTag = true;
      }
      if (vb === len && va >= 0) {
        // unterminated quote: go on from its start, as the rest may hold tags of its own
        j = va;
        break;
      }
    }
    if (!closing && attrs > 0 && pl >= 2 && ELEMENTS.has(name)) hits.hit(XSS_TAG, i, Math.min(j, i + 64));
    if (styleTag) {
      // <style> content up to </style> (or the end)
      const e = s.indexOf('</style', j);
      if (scriptCss(s.slice(j, e < 0 ? len : e))) hits.hit(XSS_STYLE, i, Math.min(len, i + 64));
    }
    i = s.indexOf('<', Math.max(j, i + 1));
  }
}

/** Outside tags: `on<letters>=`, after a quote (a break out of an attribute) or not. */
function scanHandlers(s: string, pl: number, hits: Hits): void {
  const len = s.length;
  const firstQuote = firstOf(s);
  for (let i = s.indexOf('on'); i >= 0; i = s.indexOf('on', i + 2)) {
    const p = i > 0 ? s.charCodeAt(i - 1) : 32;
    if (!(isSpace(p) || p === 47 || p === 34 || p === 39 || p === 96 || p === 59)) continue;
    let j = i + 2;
    while (j < len && isAlpha(s.charCodeAt(j))) j++;
    if (j - i < 5) continue;
    let k = j;
    while (k < len && isSpace(s.charCodeAt(k))) k++;
    if (s.charCodeAt(k) !== 61 || s.charCodeAt(k + 1) === 61) continue;
    const after = s.slice(k + 1, Math.min(len, k + 200));
    if (
      (firstQuote >= 0 && firstQuote < i) ||
      after.includes('(') ||
      after.includes('`') ||
      after.includes('&#')
    )
      hits.hit(XSS_ATTR_BREAK, i, Math.min(len, i + 64));
    else if (pl >= 2) hits.hit(XSS_HANDLER_WEAK, i, Math.min(len, i + 64));
  }
}

function firstOf(s: string): number {
  let m = -1;
  for (const q of ['"', "'", '`', '>']) {
    const x = s.indexOf(q);
    if (x >= 0 && (m < 0 || x < m)) m = x;
  }
  return m;
}

/**
 * Sink calls: each `(` or backtick, the identifier before it (whitespace between allowed). One
 * pass; the look-back over an identifier is bounded, over whitespace it never crosses a `(`.
 */
function scanSinks(s: string, pl: number, hits: Hits): void {
  const len = s.length;
  let paren = s.indexOf('(');
  let tick = s.indexOf('`');
  while (paren >= 0 || tick >= 0) {
    let i: number;
    if (tick < 0 || (paren >= 0 && paren < tick)) {
      i = paren;
      paren = s.indexOf('(', i + 1);
    } else {
      i = tick;
      tick = s.indexOf('`', i + 1);
    }
    let e = i;
    while (e > 0 && isSpace(s.charCodeAt(e - 1))) e--;
    let b = e;
    while (b > 0 && e - b < 20 && isIdent(s.charCodeAt(b - 1))) b--;
    if (b === e || (b > 0 && isIdent(s.charCodeAt(b - 1)))) continue;
    const name = s.slice(b, e);
    if (!SINKS.has(name)) continue;
    if ((name === 'write' || name === 'writeln') && !s.startsWith('document.', b - 9)) continue;
    if (name === 'print' && s.charCodeAt(b - 1) !== 46) continue;
    hits.hit(XSS_JS_SINK, b, Math.min(len, i + 16));
    return;
  }
  if (s.indexOf('[') < 0) {
    if (pl >= 2) domProperties(s, hits);
    return;
  }
  // top['al'+'ert'], window["alert"], self[`alert`]
  for (const obj of ['window[', 'top[', 'self[', 'parent[', 'this[', 'frames[', 'globalthis[']) {
    const i = s.indexOf(obj);
    if (i >= 0 && (i === 0 || !isIdent(s.charCodeAt(i - 1)))) {
      const q = s.charCodeAt(i + obj.length);
      if (q === 39 || q === 34 || q === 96) {
        hits.hit(XSS_JS_SINK, i, Math.min(len, i + 24));
        return;
      }
    }
  }
  if (pl >= 2) domProperties(s, hits);
}

/** DOM properties attackers read or set (paranoia 2). */
function domProperties(s: string, hits: Hits): void {
  for (const p of [
    'document.cookie',
    'document.domain',
    'innerhtml',
    'outerhtml',
    'location.href=',
    '.location=',
  ]) {
    const i = s.indexOf(p);
    if (i >= 0) {
      hits.hit(XSS_DOM, i, Math.min(s.length, i + 24));
      return;
    }
  }
}

/** A whole value that is a script URL: javascript:alert(1), with JavaScript after the scheme. */
function scanUriValue(s: string, hits: Hits): void {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) <= 32) i++;
  const head = squeeze(s.slice(i, i + 64));
  const colon = head.indexOf(':');
  if (colon < 0) return;
  const scheme = head.slice(0, colon);
  if (scheme !== 'javascript' && scheme !== 'vbscript' && scheme !== 'livescript' && scheme !== 'data')
    return;
  if (scheme === 'data') {
    if (scriptUrl(head)) hits.hit(XSS_JS_URI, i, Math.min(s.length, i + 64));
    return;
  }
  // `javascript: the good parts` is a title; `javascript:alert(1)` is code
  const rest = s.slice(s.indexOf(':', i) + 1);
  for (const c of ['(', '`', '=', '[', '/', '\\', "'", '"']) {
    if (rest.includes(c)) {
      hits.hit(XSS_JS_URI, i, Math.min(s.length, i + 64));
      return;
    }
  }
}

/** Template injection markers (paranoia 3). */
function scanTemplates(s: string, hits: Hits): void {
  const pairs: [string, string][] = [
    ['{{', '}}'],
    ['${', '}'],
    ['<%', '%>'],
    ['#{', '}'],
    ['{%', '%}'],
  ];
  for (const [open, close] of pairs) {
    const i = s.indexOf(open);
    if (i >= 0 && s.indexOf(close, i + open.length) > i) {
      hits.hit(XSS_TEMPLATE, i, Math.min(s.length, i + 64));
      return;
    }
  }
}

/** Judges `s` (decoded, lower case) for script injection at paranoia `pl`, reporting to `hits`. */
export function scanXss(s: string, pl: number, hits: Hits): void {
  if (s.indexOf('<') >= 0) scanTags(s, pl, hits);
  if (s.indexOf('on') >= 0 && s.indexOf('=') >= 0) scanHandlers(s, pl, hits);
  if (s.indexOf('(') >= 0 || s.indexOf('`') >= 0 || s.indexOf('[') >= 0 || (pl >= 2 && s.indexOf('.') >= 0))
    scanSinks(s, pl, hits);
  if (s.indexOf(':') >= 0) scanUriValue(s, hits);
  if (pl >= 3 && (s.indexOf('{') >= 0 || s.indexOf('<%') >= 0)) scanTemplates(s, hits);
}
