// The WAF's rule table: one row per rule, with its class, the paranoia level from which it runs
// and the anomaly score a match adds (5 critical, 3 warning, 2 notice, as OWASP CRS scores them).
// Detectors report a match by the rule's index (the constants below), never by looking a name up.

export type RuleClass = 'sqli' | 'xss' | 'traversal' | 'rce' | 'protocol';
export const RULE_CLASSES: readonly RuleClass[] = ['sqli', 'xss', 'traversal', 'rce', 'protocol'];

export interface Rule {
  readonly id: string;
  readonly cls: RuleClass;
  /** Runs at this paranoia level and above (1–4). */
  readonly paranoia: number;
  readonly score: number;
  readonly description: string;
}

const table: Rule[] = [];
function rule(id: string, cls: RuleClass, paranoia: number, score: number, description: string): number {
  table.push({ id, cls, paranoia, score, description });
  return table.length - 1;
}

// ---- SQL injection (src/waf/sqli.ts): decided on the token stream, in three contexts
export const SQLI_BREAK = rule(
  'sqli-001',
  'sqli',
  1,
  5,
  "String break then boolean logic: ' OR 1=1, admin' AND x LIKE '%, ') OR ('a'='a",
);
export const SQLI_BREAK_COMMENT = rule(
  'sqli-002',
  'sqli',
  1,
  5,
  "String break then comment truncation: admin'--, x'/*",
);
export const SQLI_UNION = rule('sqli-003', 'sqli', 1, 5, 'UNION [ALL] SELECT');
export const SQLI_TAUTOLOGY = rule(
  'sqli-004',
  'sqli',
  1,
  5,
  "Boolean operator then a constant comparison or truncation: OR 1=1, AND 'a'='a', OR 2 BETWEEN 1 AND 3, OR 1--",
);
export const SQLI_STACKED = rule(
  'sqli-005',
  'sqli',
  1,
  5,
  'Stacked query: ; DROP TABLE, ; EXEC xp_..., ; DECLARE @v, ; SHUTDOWN',
);
export const SQLI_TIME = rule(
  'sqli-006',
  'sqli',
  1,
  5,
  "Time-based blind: SLEEP(n), BENCHMARK(, PG_SLEEP(, WAITFOR DELAY '..', DBMS_LOCK.SLEEP(",
);
export const SQLI_DANGEROUS = rule(
  'sqli-007',
  'sqli',
  1,
  5,
  'Dangerous functions and objects: xp_cmdshell, LOAD_FILE(, INTO OUTFILE, EXTRACTVALUE(, UTL_HTTP, information_schema, @@version',
);
export const SQLI_SUBQUERY = rule(
  'sqli-008',
  'sqli',
  1,
  5,
  'A SELECT expression inside an expression: (SELECT x FROM ..), AND (SELECT, = SELECT',
);
export const SQLI_ORDER = rule(
  'sqli-009',
  'sqli',
  1,
  5,
  'Column probing after a value: 1 ORDER BY 3, x) GROUP BY 1, HAVING 1=1',
);
export const SQLI_MYSQL_COMMENT = rule('sqli-010', 'sqli', 1, 5, 'MySQL executable comment /*!...*/');
export const SQLI_BREAK_OPERATOR = rule(
  'sqli-011',
  'sqli',
  1,
  5,
  "String break then an operator on a function, variable or subquery: '-@a, '+(SELECT, '||SLEEP(",
);
export const SQLI_SELECT = rule(
  'sqli-012',
  'sqli',
  2,
  5,
  'A value that is a SELECT statement: SELECT x FROM y, SELECT 1,2',
);
export const SQLI_FUNC = rule(
  'sqli-013',
  'sqli',
  2,
  5,
  'SQL function in an expression: - ORD(, + CHAR(124), AND ASCII(',
);
export const SQLI_CASE = rule('sqli-014', 'sqli', 1, 5, 'CASE WHEN <literal or comparison> THEN <value>');
export const SQLI_BREAK_WEAK = rule(
  'sqli-015',
  'sqli',
  2,
  5,
  "String break then an operator closed by the application's own quote: '-', x' = 'x",
);
export const SQLI_BREAK_HASH = rule('sqli-016', 'sqli', 2, 5, "String break then a MySQL # comment: admin'#");
export const SQLI_COMMENT = rule(
  'sqli-017',
  'sqli',
  2,
  5,
  'A value ending in an SQL comment after a number or bracket: 1--, @@x/*',
);
export const SQLI_HEX = rule('sqli-018', 'sqli', 2, 3, 'Long hexadecimal literal (0x + 10 or more digits)');
export const SQLI_KEYWORDS = rule(
  'sqli-019',
  'sqli',
  3,
  3,
  'Two or more SQL statement keywords together with SQL punctuation',
);

// ---- cross-site scripting (src/waf/xss.ts): an HTML tokenizer, URL schemes, JS sinks
export const XSS_SCRIPT = rule('xss-001', 'xss', 1, 5, '<script> tag');
export const XSS_ACTIVE_TAG = rule(
  'xss-002',
  'xss',
  1,
  5,
  'Tags that load or run content: iframe, frame, object, embed, applet, base, meta, link, svg, math, style, xml, isindex',
);
export const XSS_EVENT_ATTR = rule('xss-003', 'xss', 1, 5, 'An on* event handler attribute in a tag');
export const XSS_JS_URI = rule(
  'xss-004',
  'xss',
  1,
  5,
  'javascript:, vbscript:, data:text/html URL in an attribute or as the whole value',
);
export const XSS_SRCDOC = rule('xss-005', 'xss', 1, 5, 'srcdoc attribute');
export const XSS_STYLE = rule(
  'xss-006',
  'xss',
  1,
  5,
  'Script in CSS: expression(, -moz-binding, behavior:, url(javascript:, @import',
);
export const XSS_ATTR_BREAK = rule(
  'xss-007',
  'xss',
  1,
  5,
  'Attribute break-out then an event handler: " onmouseover=..., \'autofocus/onfocus=',
);
export const XSS_JS_SINK = rule(
  'xss-008',
  'xss',
  1,
  5,
  'JavaScript sink call: alert(, prompt(, confirm(, eval(, setTimeout(, atob(, fromCharCode(, top[..]',
);
export const XSS_HANDLER_WEAK = rule('xss-009', 'xss', 2, 3, 'on*= outside a tag, without a break-out');
export const XSS_TAG = rule('xss-010', 'xss', 2, 3, 'An HTML element with attributes');
export const XSS_DOM = rule(
  'xss-011',
  'xss',
  2,
  3,
  'DOM properties attackers read or set: document.cookie, document.domain, innerHTML, location=',
);
export const XSS_ANY_TAG = rule('xss-012', 'xss', 3, 3, 'Any HTML tag or comment');
export const XSS_TEMPLATE = rule(
  'xss-013',
  'xss',
  3,
  3,
  'Template injection markers: {{..}}, $' + '{..}, <%..%>, #{..}',
);

// ---- path traversal (src/waf/scan.ts)
export const TRAV_DOTDOT = rule(
  'traversal-001',
  'traversal',
  1,
  5,
  '../ or ..\\ twice or more, or once when encoded (%2e%2e%2f, ..%c0%af, %252e)',
);
export const TRAV_FILE = rule(
  'traversal-002',
  'traversal',
  1,
  5,
  'Well-known sensitive files: /etc/passwd, /etc/shadow, boot.ini, win.ini, /proc/self, .htpasswd, ...',
);
export const TRAV_DOTDOT_ONE = rule('traversal-003', 'traversal', 2, 5, 'A single ../ or ..\\');
export const TRAV_SYSTEM_PATH = rule(
  'traversal-004',
  'traversal',
  2,
  5,
  'Absolute system paths: /etc/..., /var/log/..., c:\\windows, /root/',
);

// ---- OS command and code injection (src/waf/scan.ts)
export const RCE_CHAIN = rule(
  'rce-001',
  'rce',
  1,
  5,
  'Shell separator then a known command: ; id, | cat, && whoami, %0a ping -c',
);
export const RCE_SUBST = rule('rce-002', 'rce', 1, 5, 'Command substitution: `id`, $(whoami), $(`...`)');
export const RCE_SHELL_PATH = rule(
  'rce-003',
  'rce',
  1,
  5,
  'A path to a shell or binary: /bin/sh, /usr/bin/id',
);
export const RCE_SHELLSHOCK = rule('rce-004', 'rce', 1, 5, 'Shellshock: () {');
export const RCE_IFS = rule('rce-005', 'rce', 1, 5, 'Shell evasion: $' + '{IFS}, $IFS$9');
export const RCE_CODE = rule(
  'rce-006',
  'rce',
  1,
  5,
  'Code execution: <?php, <?=, system(, shell_exec(, passthru(, phpinfo(, $' + '{@..}, {$' + '{..}}',
);
export const RCE_SSI = rule('rce-007', 'rce', 1, 5, 'Server-side include: <!--#exec, <!--#include');
export const RCE_START = rule(
  'rce-008',
  'rce',
  2,
  5,
  'A value that starts with a command and an option or path: ls -la, nc -e, wget http://',
);

// ---- protocol anomalies (src/waf/engine.ts)
export const PROTO_NUL = rule('protocol-001', 'protocol', 1, 5, 'NUL byte in a decoded value');
export const PROTO_OVERLONG = rule('protocol-002', 'protocol', 1, 5, 'Overlong UTF-8 (%c0%af, %e0%80%ae)');
export const PROTO_CRLF = rule(
  'protocol-003',
  'protocol',
  1,
  5,
  'CR/LF then a header or request line in a value (header injection, response splitting, smuggling)',
);
export const PROTO_MULTI_CT = rule('protocol-004', 'protocol', 1, 5, 'More than one Content-Type');
export const PROTO_ARGS = rule('protocol-005', 'protocol', 1, 5, 'More than 255 query or form parameters');
export const PROTO_NAME_CTRL = rule(
  'protocol-006',
  'protocol',
  1,
  5,
  'Control character in a parameter name',
);
export const PROTO_BAD_MULTIPART = rule(
  'protocol-007',
  'protocol',
  1,
  5,
  'A multipart body the WAF cannot parse (no boundary, or not starting with it)',
);
export const PROTO_BAD_UTF8 = rule('protocol-008', 'protocol', 1, 3, 'Invalid UTF-8 in the path');
export const PROTO_METHOD = rule(
  'protocol-009',
  'protocol',
  2,
  3,
  'Method other than GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
);
export const PROTO_BAD_JSON = rule('protocol-010', 'protocol', 2, 3, 'A JSON body that does not parse');
export const PROTO_MULTI_ENCODED = rule(
  'protocol-011',
  'protocol',
  3,
  3,
  'A value percent-encoded more than once',
);

export const RULES: readonly Rule[] = table;
export const RULE_COUNT = table.length;

/** Rule index by id (config validation and exclusions; never on the request path). */
export function ruleIndex(id: string): number {
  return table.findIndex((r) => r.id === id);
}
