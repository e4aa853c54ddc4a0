// SQL injection by tokenizing, in the manner of libinjection: a value is read as SQL tokens
// (strings with both quote styles and their escapes, numbers, operators, keywords, functions,
// variables, comments, identifiers and backticks) in each context it could land in — as it is
// (a number or an identifier), after a single quote, after a double quote — and the token
// sequence is judged by a few shapes that only injections take (a string broken out of and
// followed by boolean logic, UNION SELECT, a stacked statement, a tautology, a time function).
// English that happens to hold SQL words ("select a dress", "drop shipping", "1=1 is true",
// "O'Brien and Sons") does not take those shapes.
//
// One pass to tokenize, one pass over the tokens with a bounded look-ahead: linear in the value.
// The token arrays are module-level and reused (grown on demand), so a value costs no allocation
// beyond the lower-cased words looked up in the keyword table.
import {
  SQLI_BREAK,
  SQLI_BREAK_COMMENT,
  SQLI_BREAK_HASH,
  SQLI_BREAK_OPERATOR,
  SQLI_BREAK_WEAK,
  SQLI_CASE,
  SQLI_COMMENT,
  SQLI_DANGEROUS,
  SQLI_FUNC,
  SQLI_HEX,
  SQLI_KEYWORDS,
  SQLI_MYSQL_COMMENT,
  SQLI_ORDER,
  SQLI_SELECT,
  SQLI_STACKED,
  SQLI_SUBQUERY,
  SQLI_TAUTOLOGY,
  SQLI_TIME,
  SQLI_UNION,
} from './rules.ts';
import type { Hits } from './scan.ts';

// Token kinds
const STR = 1;
const NUM = 2;
const WORD = 3;
const KW = 4;
const LOGIC = 5;
const CMP = 6;
const ARITH = 7;
const LPAR = 8;
const RPAR = 9;
const COMMA = 10;
const SEMI = 11;
const COMMENT = 12;
const VAR = 13;
const FUNC = 14;
const DOT = 15;
const OTHER = 16;

// Keywords (the `sub` of a KW token)
const K_UNION = 1;
const K_SELECT = 2;
const K_FROM = 3;
const K_WHERE = 4;
const K_HAVING = 5;
const K_ORDER = 6;
const K_GROUP = 7;
const K_BY = 8;
const K_INTO = 9;
const K_OUTFILE = 10;
const K_INSERT = 11;
const K_UPDATE = 12;
const K_DELETE = 13;
const K_DROP = 14; // drop, create, alter, truncate, rename
const K_EXEC = 15;
const K_DECLARE = 16;
const K_SHUTDOWN = 17;
const K_WAITFOR = 18;
const K_DELAY = 19;
const K_CASE = 20;
const K_WHEN = 21;
const K_THEN = 22;
const K_EXISTS = 23;
const K_NOT = 24;
const K_CONST = 25; // null, true, false
const K_ALL = 26; // all, distinct
const K_OBJECT = 27; // table, database, schema, function, procedure, view, index, trigger, login, user
const K_SET = 28;
const K_LIMIT = 29;
const K_PROCEDURE = 30;
const K_TOP = 31;
const K_AS = 32;
const K_BEGIN = 33;
const K_IF = 34;

// Comparison words are CMP tokens with these subs (for BETWEEN ... AND ...)
const C_OP = 0;
const C_LIKE = 1;
const C_IS = 2;
const C_IN = 3;
const C_BETWEEN = 4;

// Comment subs
const CM_DASH = 1;
const CM_BLOCK = 2;
const CM_HASH = 3;

/**
 * Keywords by a hash of their letters, computed while the tokenizer reads a word, so that looking
 * a word up costs no substring: [word, kind << 8 | sub] pairs per hash.
 */
const WORDS = new Map<number, [string, number][]>();
function wordHash(s: string, a: number, b: number): number {
  let h = b - a;
  for (let i = a; i < b; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}
function words(kind: number, sub: number, list: string): void {
  for (const w of list.split(' ')) {
    const h = wordHash(w, 0, w.length);
    const bucket = WORDS.get(h) ?? [];
    bucket.push([w, (kind << 8) | sub]);
    WORDS.set(h, bucket);
  }
}
/** The keyword code of s[a, b), or undefined. */
function keyword(s: string, a: number, b: number): number | undefined {
  const bucket = WORDS.get(wordHash(s, a, b));
  if (bucket === undefined) return undefined;
  for (const [w, code] of bucket) if (w.length === b - a && s.startsWith(w, a)) return code;
  return undefined;
}
words(KW, K_UNION, 'union');
words(KW, K_SELECT, 'select');
words(KW, K_FROM, 'from');
words(KW, K_WHERE, 'where');
words(KW, K_HAVING, 'having');
words(KW, K_ORDER, 'order');
words(KW, K_GROUP, 'group');
words(KW, K_BY, 'by');
words(KW, K_INTO, 'into');
words(KW, K_OUTFILE, 'outfile dumpfile');
words(KW, K_INSERT, 'insert');
words(KW, K_UPDATE, 'update');
words(KW, K_DELETE, 'delete');
words(KW, K_DROP, 'drop create alter truncate rename');
words(KW, K_EXEC, 'exec execute');
words(KW, K_DECLARE, 'declare');
words(KW, K_SHUTDOWN, 'shutdown');
words(KW, K_WAITFOR, 'waitfor');
words(KW, K_DELAY, 'delay');
words(KW, K_CASE, 'case');
words(KW, K_WHEN, 'when');
words(KW, K_THEN, 'then');
words(KW, K_EXISTS, 'exists');
words(KW, K_NOT, 'not');
words(KW, K_CONST, 'null true false');
words(KW, K_ALL, 'all distinct distinctrow');
words(KW, K_OBJECT, 'table database schema function procedure view index trigger login user');
words(KW, K_SET, 'set');
words(KW, K_LIMIT, 'limit offset');
words(KW, K_PROCEDURE, 'procedure');
words(KW, K_TOP, 'top');
words(KW, K_AS, 'as');
words(KW, K_BEGIN, 'begin');
words(KW, K_IF, 'if');
words(LOGIC, 0, 'and or xor');
words(CMP, C_LIKE, 'like rlike regexp sounds glob ilike');
words(CMP, C_IS, 'is');
words(CMP, C_IN, 'in');
words(CMP, C_BETWEEN, 'between');
words(ARITH, 0, 'div mod');

/** Functions used to stall a query (time-based blind injection). */
const TIME_FUNCS = new Set(['sleep', 'benchmark', 'pg_sleep', 'randomblob', 'sys.dbms_lock.sleep']);
/** Functions and objects that reach the file system, the network or the catalog. */
const DANGEROUS = new Set([
  'load_file',
  'xp_cmdshell',
  'xp_regread',
  'xp_regwrite',
  'xp_dirtree',
  'xp_fileexist',
  'sp_oacreate',
  'sp_executesql',
  'sp_makewebtask',
  'sp_addlogin',
  'sp_password',
  'extractvalue',
  'updatexml',
  'utl_http',
  'utl_inaddr',
  'utl_file',
  'dbms_pipe',
  'dbms_xmlgen',
  'sys_eval',
  'sys_exec',
  'pg_read_file',
  'pg_ls_dir',
  'lo_import',
  'lo_export',
  'openrowset',
  'opendatasource',
  'information_schema',
  'sysobjects',
  'syscolumns',
  'sysdatabases',
  'pg_shadow',
  'pg_catalog',
  'name_const',
  'geometrycollection',
  'multipoint',
  'exp',
]);
/** Functions common in injections that read or encode data. */
const SQL_FUNCS = new Set([
  'char',
  'chr',
  'nchar',
  'ascii',
  'ord',
  'hex',
  'unhex',
  'concat',
  'concat_ws',
  'group_concat',
  'string_agg',
  'substring',
  'substr',
  'mid',
  'left',
  'right',
  'version',
  'database',
  'user',
  'current_user',
  'system_user',
  'session_user',
  'schema',
  'db_name',
  'cast',
  'convert',
  'count',
  'floor',
  'rand',
  'length',
  'len',
  'if',
  'iif',
  'ifnull',
  'nullif',
  'coalesce',
  'elt',
  'make_set',
  'bin',
  'md5',
  'sha1',
  'row_count',
  'generate_series',
  'to_char',
  'to_number',
]);
/** Built-ins read without brackets. */
const NILADIC = new Set([
  'current_user',
  'session_user',
  'system_user',
  'current_database',
  'current_schema',
]);
const SYSVARS = new Set([
  '@@version',
  '@@datadir',
  '@@hostname',
  '@@basedir',
  '@@servername',
  '@@spid',
  '@@tmpdir',
  '@@global',
  '@@version_compile_os',
]);

// ---- token storage, reused
let cap = 256;
let kind = new Uint8Array(cap);
let sub = new Uint8Array(cap);
let from = new Int32Array(cap);
let to = new Int32Array(cap);
/** STR: closed by its quote (1) or running to the end (0). */
let closed = new Uint8Array(cap);
let n = 0;
/** A MySQL executable comment was seen while tokenizing. */
let mysqlComment = false;

function push(k: number, s: number, a: number, b: number, c = 1): void {
  if (n === cap) {
    cap *= 2;
    const k2 = new Uint8Array(cap);
    k2.set(kind);
    kind = k2;
    const s2 = new Uint8Array(cap);
    s2.set(sub);
    sub = s2;
    const f2 = new Int32Array(cap);
    f2.set(from);
    from = f2;
    const t2 = new Int32Array(cap);
    t2.set(to);
    to = t2;
    const c2 = new Uint8Array(cap);
    c2.set(closed);
    closed = c2;
  }
  kind[n] = k;
  sub[n] = s;
  from[n] = a;
  to[n] = b;
  closed[n] = c;
  n++;
}

function isSpace(c: number): boolean {
  return c <= 32 || c === 0x7f || c === 0xa0 || c === 0x2028 || c === 0x2029 || c === 0x3000 || c === 0xfeff;
}

function isWordChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 95 ||
    c === 36 ||
    (c >= 65 && c <= 90) ||
    (c >= 0xc0 && !isSpace(c) && c !== 0x2018 && c !== 0x2019 && c !== 0x201c && c !== 0x201d)
  );
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Reads a quoted string from `i` (the opening quote); returns the index after it. */
function readString(s: string, i: number, q: number): number {
  const len = s.length;
  let j = i + 1;
  for (;;) {
    if (j >= len) {
      push(STR, q, i, len, 0);
      return len;
    }
    const c = s.charCodeAt(j);
    if (c === 92 /* \ */) {
      j += 2;
      continue;
    }
    if (c === q) {
      if (s.charCodeAt(j + 1) === q) {
        j += 2;
        continue;
      }
      push(STR, q, i, j + 1);
      return j + 1;
    }
    j++;
  }
}

/**
 * Tokenizes `s` (lower case). `quote`: 0 as it is; 39 or 34: the value is read as the rest of a
 * string opened by that quote, so the first token is that string, closed at the first quote.
 */
function tokenize(s: string, quote: number): void {
  n = 0;
  mysqlComment = false;
  const len = s.length;
  let i = 0;
  if (quote !== 0) {
    // The implicit string: from the start to the first unescaped `quote`.
    let j = 0;
    for (;;) {
      if (j >= len) return; // never closed: this context does not apply
      const c = s.charCodeAt(j);
      if (c === 92) {
        j += 2;
        continue;
      }
      if (c === quote) {
        if (s.charCodeAt(j + 1) === quote) {
          j += 2;
          continue;
        }
        break;
      }
      j++;
    }
    push(STR, quote, 0, j + 1);
    i = j + 1;
  }
  let inExec = false;
  while (i < len) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
    // comments
    if (c === 47 /* / */ && d === 42 /* * */) {
      if (s.charCodeAt(i + 2) === 33 /* ! */) {
        // MySQL executable comment: its content is SQL
        mysqlComment = true;
        inExec = true;
        i += 3;
        while (i < len && isDigit(s.charCodeAt(i))) i++;
        continue;
      }
      const end = s.indexOf('*/', i + 2);
      const stop = end < 0 ? len : end + 2;
      push(COMMENT, CM_BLOCK, i, stop);
      i = stop;
      continue;
    }
    if (c === 42 /* * */ && d === 47 && inExec) {
      inExec = false;
      i += 2;
      continue;
    }
    if ((c === 45 /* - */ && d === 45) || c === 35 /* # */) {
      let e = s.indexOf('\n', i);
      if (e < 0) e = len;
      push(COMMENT, c === 35 ? CM_HASH : CM_DASH, i, e);
      i = e;
      continue;
    }
    // strings
    if (c === 39 || c === 34) {
      i = readString(s, i, c);
      continue;
    }
    if (c === 96 /* ` */) {
      const e = s.indexOf('`', i + 1);
      const stop = e < 0 ? len : e + 1;
      push(WORD, 0, i, stop);
      i = stop;
      continue;
    }
    // numbers (a digit run followed by letters is a word: 2nd, 70s, 1x)
    if (isDigit(c) || (c === 46 /* . */ && isDigit(d))) {
      let j = i;
      if (c === 48 && (d === 120 || d === 98) /* 0x 0b */) {
        j += 2;
        while (j < len && hexOrBin(s.charCodeAt(j))) j++;
      } else {
        while (j < len && isDigit(s.charCodeAt(j))) j++;
        if (s.charCodeAt(j) === 46) {
          j++;
          while (j < len && isDigit(s.charCodeAt(j))) j++;
        }
        if (s.charCodeAt(j) === 101 /* e */) {
          let k = j + 1;
          const sign = s.charCodeAt(k);
          if (sign === 43 || sign === 45) k++;
          if (isDigit(s.charCodeAt(k))) {
            j = k;
            while (j < len && isDigit(s.charCodeAt(j))) j++;
          }
        }
      }
      if (j < len && isWordChar(s.charCodeAt(j))) {
        while (j < len && isWordChar(s.charCodeAt(j))) j++;
        push(WORD, 0, i, j);
      } else push(NUM, 0, i, j);
      i = j;
      continue;
    }
    if (c === 92 /* \ */ && d === 110 /* N: MySQL NULL, lower-cased */) {
      push(NUM, 0, i, i + 2);
      i += 2;
      continue;
    }
    // variables
    if (c === 64 /* @ */) {
      let j = i + 1;
      if (s.charCodeAt(j) === 64) j++;
      while (j < len && (isWordChar(s.charCodeAt(j)) || s.charCodeAt(j) === 46)) j++;
      push(VAR, j - i > 1 && s.charCodeAt(i + 1) === 64 ? 1 : 0, i, j);
      i = j;
      continue;
    }
    // words: keywords, functions, identifiers
    if (isWordChar(c)) {
      let j = i + 1;
      while (j < len && isWordChar(s.charCodeAt(j))) j++;
      // n'..', x'..', b'..', e'..' string prefixes (single quotes only)
      if (j === i + 1 && (c === 110 || c === 120 || c === 98 || c === 101) && d === 39) {
        i = j;
        continue;
      }
      const w = j - i <= 12 ? keyword(s, i, j) : undefined;
      let k = j;
      while (k < len && isSpace(s.charCodeAt(k))) k++;
      const paren = s.charCodeAt(k) === 40;
      if (w !== undefined) {
        const wk = w >> 8;
        // `user(`, `if(`: functions that share a keyword's name
        if (paren && wk === KW && ((w & 0xff) === K_OBJECT || (w & 0xff) === K_IF)) push(FUNC, 0, i, j);
        else push(wk, w & 0xff, i, j);
      } else push(paren ? FUNC : WORD, 0, i, j);
      i = j;
      continue;
    }
    // operators and punctuation
    switch (c) {
      case 40:
        push(LPAR, 0, i, i + 1);
        i++;
        continue;
      case 41:
        push(RPAR, 0, i, i + 1);
        i++;
        continue;
      case 44:
        push(COMMA, 0, i, i + 1);
        i++;
        continue;
      case 59:
        push(SEMI, 0, i, i + 1);
        i++;
        continue;
      case 46:
        push(DOT, 0, i, i + 1);
        i++;
        continue;
      case 61: // = ==
        push(CMP, C_OP, i, d === 61 ? i + 2 : i + 1);
        i += d === 61 ? 2 : 1;
        continue;
      case 60: // < <= <> <=>
        if (d === 61 && s.charCodeAt(i + 2) === 62) {
          push(CMP, C_OP, i, i + 3);
          i += 3;
        } else if (d === 61 || d === 62) {
          push(CMP, C_OP, i, i + 2);
          i += 2;
        } else if (d === 60) {
          push(ARITH, 0, i, i + 2);
          i += 2;
        } else {
          push(CMP, C_OP, i, i + 1);
          i++;
        }
        continue;
      case 62: // > >= >>
        if (d === 61) {
          push(CMP, C_OP, i, i + 2);
          i += 2;
        } else if (d === 62) {
          push(ARITH, 0, i, i + 2);
          i += 2;
        } else {
          push(CMP, C_OP, i, i + 1);
          i++;
        }
        continue;
      case 33: // != !
        if (d === 61) {
          push(CMP, C_OP, i, i + 2);
          i += 2;
        } else {
          push(KW, K_NOT, i, i + 1);
          i++;
        }
        continue;
      case 58: // :=
        if (d === 61) {
          push(CMP, C_OP, i, i + 2);
          i += 2;
        } else {
          push(OTHER, 0, i, i + 1);
          i++;
        }
        continue;
      case 38: // && &
      case 124: // || |
        if (d === c) {
          push(LOGIC, 0, i, i + 2);
          i += 2;
        } else {
          push(ARITH, 0, i, i + 1);
          i++;
        }
        continue;
      case 43:
      case 45:
      case 42:
      case 47:
      case 37:
      case 94:
      case 126:
        push(ARITH, 0, i, i + 1);
        i++;
        continue;
      default:
        push(OTHER, 0, i, i + 1);
        i++;
    }
  }
}

function hexOrBin(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
}

// ---- judging the tokens

/** The index of the next token after `i` that is not a comment, or n. */
function next(i: number): number {
  let j = i + 1;
  while (j < n && kind[j] === COMMENT) j++;
  return j;
}

function isKw(i: number, k: number): boolean {
  return i < n && kind[i] === KW && sub[i] === k;
}

/** A literal: number, string, NULL/TRUE/FALSE. */
function isConst(i: number): boolean {
  if (i >= n) return false;
  const k = kind[i];
  return k === NUM || k === STR || (k === KW && sub[i] === K_CONST);
}

function sameText(s: string, a: number, b: number): boolean {
  const la = to[a] - from[a];
  if (la !== to[b] - from[b]) return false;
  return s.startsWith(s.slice(from[a], to[a]), from[b]);
}

function text(s: string, i: number): string {
  return s.slice(from[i], to[i]);
}

/** `i` starts `const CMP const`, `x CMP x`, `const BETWEEN const AND const` or `const IN (const`: returns its end, or -1. */
function comparison(s: string, i: number): number {
  if (i >= n) return -1;
  const left = i;
  const leftConst = isConst(left);
  if (!leftConst && kind[left] !== WORD && kind[left] !== VAR) return -1;
  let j = next(left);
  if (j >= n || kind[j] !== CMP) return -1;
  const op = sub[j];
  if (op === C_IS) {
    j = next(j);
    if (isKw(j, K_NOT)) j = next(j);
    return isKw(j, K_CONST) && leftConst ? j : -1;
  }
  if (op === C_LIKE && s.charCodeAt(from[j]) === 115 /* sounds */) {
    j = next(j);
    if (j >= n || kind[j] !== CMP || sub[j] !== C_LIKE) return -1;
  }
  let r = next(j);
  while (r < n && kind[r] === LPAR) r = next(r);
  if (r >= n) return -1;
  if (op === C_BETWEEN) {
    const and = next(r);
    if (!leftConst || !isConst(r) || and >= n || kind[and] !== LOGIC) return -1;
    const r2 = next(and);
    return isConst(r2) ? r2 : -1;
  }
  if (op === C_IN) return leftConst && isConst(r) ? r : -1;
  if (leftConst && isConst(r)) return r;
  // x LIKE CHAR(37), x = CONCAT(..): a SQL function on the right
  if (kind[r] === FUNC && SQL_FUNCS.has(text(s, r))) return r;
  // current_user = .., user = ..: built-ins on the left
  if (kind[left] === WORD && NILADIC.has(text(s, left))) return r;
  // a = a, x = x: the same identifier both sides
  if (!leftConst && kind[r] === kind[left] && sameText(s, left, r)) return r;
  return -1;
}

/** After SELECT at `i`: does an expression follow (so the SELECT is SQL, not English)? */
function selectExpr(i: number): boolean {
  let j = next(i);
  if (isKw(j, K_TOP)) return next(j) < n && kind[next(j)] === NUM;
  if (isKw(j, K_ALL)) j = next(j);
  if (j >= n) return false;
  const k = kind[j];
  if (k === NUM || k === STR || k === VAR || k === FUNC || k === LPAR) return true;
  if (k === KW && (sub[j] === K_CASE || sub[j] === K_CONST || sub[j] === K_FROM)) return true;
  if (k === ARITH) return true; // SELECT *, SELECT -1
  if (k === WORD) {
    const a = next(j);
    if (a >= n) return false;
    const ka = kind[a];
    if (ka === COMMA || ka === DOT || ka === ARITH) return true;
    if (ka === KW && (sub[a] === K_FROM || sub[a] === K_AS || sub[a] === K_INTO)) return true;
  }
  return false;
}

/** An operand after a boolean operator that makes `x' OR <operand>` SQL rather than prose. */
function sqlOperand(s: string, j: number): boolean {
  while (j < n && kind[j] === LPAR) j = next(j);
  if (j >= n) return false;
  const k = kind[j];
  if (k === VAR || k === FUNC) return true;
  if (k === KW) {
    const w = sub[j];
    if (w === K_OBJECT) return next(j) < n && kind[next(j)] === CMP;
    return w === K_CONST || w === K_NOT || w === K_EXISTS || w === K_SELECT;
  }
  let a = next(j);
  if (k === NUM) {
    if (a >= n) return true;
    const ka = kind[a];
    return ka === CMP || ka === LOGIC || ka === ARITH || ka === SEMI || ka === RPAR || j + 1 < a;
  }
  if (k === STR) {
    if (closed[j] === 0) return false;
    if (a >= n) return true;
    const ka = kind[a];
    return ka === CMP || ka === LOGIC || ka === ARITH || ka === COMMENT || ka === SEMI || ka === RPAR;
  }
  if (k === WORD) {
    // x.y.z = ...
    while (a + 1 < n && kind[a] === DOT && kind[a + 1] === WORD) a = next(a + 1);
    return a < n && kind[a] === CMP;
  }
  return comparison(s, j) >= 0;
}

/**
 * `'-'`, `x' = 'x`, `'*'`: after the break only symbolic operators and literals, up to a last string
 * the application's own closing quote ends (short, without spaces).
 */
function weakBreak(s: string, j: number, quote: number): boolean {
  const last = n - 1;
  if (last - j > 6 || kind[last] !== STR || closed[last] !== 0 || sub[last] !== quote) return false;
  if (to[last] - from[last] > 17) return false;
  for (let k = from[last]; k < to[last]; k++) if (s.charCodeAt(k) <= 32) return false;
  for (let i = j; i < last; i++) {
    const k = kind[i];
    if (k === NUM || (k === STR && closed[i] === 1) || k === COMMENT) continue;
    if ((k === ARITH || k === CMP || k === LOGIC) && !isWordChar(s.charCodeAt(from[i]))) continue;
    return false;
  }
  return true;
}

/** Statement keywords that make `; <kw>` a stacked query, with what must follow them. */
function stacked(s: string, j: number): boolean {
  if (j >= n) return false;
  if (kind[j] === FUNC) return false;
  if (kind[j] !== KW) return false;
  const a = next(j);
  switch (sub[j]) {
    case K_SELECT:
      return selectExpr(j);
    case K_INSERT:
      return isKw(a, K_INTO);
    case K_UPDATE:
      return a < n && kind[a] === WORD && isKw(next(a), K_SET);
    case K_DELETE:
      return isKw(a, K_FROM);
    case K_DROP:
      return isKw(a, K_OBJECT) || isKw(a, K_PROCEDURE);
    case K_EXEC:
      return execTarget(s, a);
    case K_DECLARE:
      return a < n && kind[a] === VAR;
    case K_SHUTDOWN:
      return a >= n || kind[a] === COMMENT || kind[a] === SEMI || (kind[a] === WORD && text(s, a) === 'with');
    case K_WAITFOR:
      return isKw(a, K_DELAY) || (a < n && kind[a] === WORD && text(s, a) === 'time');
    case K_BEGIN:
      return a < n && (kind[a] === WORD || kind[a] === FUNC) && /* begin dbms_lock.sleep */ next(a) < n;
    case K_IF:
      return a < n && kind[a] === LPAR;
    default:
      return false;
  }
}

function execTarget(s: string, a: number): boolean {
  if (a >= n) return false;
  const k = kind[a];
  if (k === LPAR || k === VAR || k === STR) return true;
  if (k === WORD || k === FUNC) {
    const w = text(s, a);
    return w.startsWith('xp_') || w.startsWith('sp_') || w === 'master' || w === 'dbo' || w === 'immediate';
  }
  return false;
}

/** The word before a DOT chain ends at `i`: `dbms_lock.sleep` → 'dbms_lock.sleep'. */
function qualified(s: string, i: number): string {
  const w = text(s, i);
  if (i >= 2 && kind[i - 1] === DOT && kind[i - 2] === WORD) return `${text(s, i - 2)}.${w}`;
  return w;
}

function judge(s: string, quote: number, hits: Hits): void {
  if (n === 0) return;
  if (mysqlComment) hits.hit(SQLI_MYSQL_COMMENT, from[0], to[n - 1]);
  let start = 0;
  if (quote !== 0) {
    // The string broken out of: what follows it (past closing brackets) decides.
    let j = next(0);
    while (j < n && kind[j] === RPAR) j = next(j);
    const brk = to[0] - 1;
    if (j < n) {
      const k = kind[j];
      if (k === LOGIC && sqlOperand(s, next(j))) hits.hit(SQLI_BREAK, brk, to[Math.min(next(j), n - 1)]);
      else if ((k === ARITH || k === CMP) && j + 1 < n) {
        const o = next(j);
        const after = next(o);
        if (
          o < n &&
          (kind[o] === FUNC ||
            kind[o] === VAR ||
            (kind[o] === LPAR && isKw(next(o), K_SELECT)) ||
            (k === CMP &&
              isConst(o) &&
              after < n &&
              (kind[after] === LOGIC || kind[after] === CMP || kind[after] === SEMI || kind[after] === RPAR)))
        )
          hits.hit(SQLI_BREAK_OPERATOR, brk, to[o]);
        else if (weakBreak(s, j, quote)) hits.hit(SQLI_BREAK_WEAK, brk, to[n - 1]);
      } else if (k === KW) {
        const w = sub[j];
        const a = next(j);
        if (w === K_UNION && a < n && kind[a] === WORD && next(a) < n && kind[next(a)] === CMP)
          hits.hit(SQLI_BREAK, brk, to[next(a)]);
        else if (
          ((w === K_ORDER || w === K_GROUP) && isKw(a, K_BY) && next(a) < n && kind[next(a)] === NUM) ||
          ((w === K_HAVING || w === K_WHERE) && comparison(s, a) >= 0) ||
          (w === K_INTO && (isKw(a, K_OUTFILE) || (a < n && kind[a] === VAR))) ||
          (w === K_PROCEDURE && a < n && kind[a] === FUNC) ||
          (w === K_LIMIT && a < n && kind[a] === NUM)
        )
          hits.hit(SQLI_BREAK, brk, to[a < n ? a : j]);
      }
    }
    // A comment right after the break: comment truncation
    if (1 < n && kind[1] === COMMENT) {
      if (sub[1] !== CM_HASH) hits.hit(SQLI_BREAK_COMMENT, brk, to[1]);
      else if (n === 2 && s.slice(from[1] + 1, to[1]).trim() === '') hits.hit(SQLI_BREAK_HASH, brk, to[1]);
    } else {
      // after closing brackets: x') --
      let r = 1;
      while (r < n && kind[r] === RPAR) r++;
      if (r > 1 && r < n && kind[r] === COMMENT && sub[r] !== CM_HASH)
        hits.hit(SQLI_BREAK_COMMENT, brk, to[r]);
    }
    start = 1;
  }
  let sqlKeywords = 0;
  for (let i = start; i < n; i++) {
    const k = kind[i];
    switch (k) {
      case KW: {
        const w = sub[i];
        if (w === K_UNION) {
          let j = next(i);
          if (isKw(j, K_ALL)) j = next(j);
          while (j < n && kind[j] === LPAR) j = next(j);
          if (isKw(j, K_SELECT)) hits.hit(SQLI_UNION, from[i], to[j]);
          sqlKeywords++;
        } else if (w === K_SELECT) {
          sqlKeywords++;
          if (selectExpr(i)) {
            const p = i > 0 ? kind[i - 1] : 0;
            if (
              p === LPAR ||
              p === LOGIC ||
              p === CMP ||
              p === ARITH ||
              p === COMMA ||
              (p === KW && (sub[i - 1] === K_UNION || sub[i - 1] === K_ALL)) ||
              (p === STR && quote !== 0 && i === next(0))
            )
              hits.hit(SQLI_SUBQUERY, from[i], to[next(i)]);
            else if (i === start || p === SEMI) hits.hit(SQLI_SELECT, from[i], to[next(i)]);
          }
        } else if (w === K_HAVING || w === K_WHERE) {
          if (comparison(s, next(i)) >= 0 && (w === K_HAVING || i > start)) {
            hits.hit(w === K_HAVING ? SQLI_ORDER : SQLI_TAUTOLOGY, from[i], to[next(i)]);
          }
          sqlKeywords++;
        } else if (w === K_ORDER || w === K_GROUP) {
          const by = next(i);
          if (isKw(by, K_BY)) {
            const a = next(by);
            const p = i > start ? kind[i - 1] : i > 0 && quote !== 0 ? STR : 0;
            if (a < n && kind[a] === NUM && (p === NUM || p === RPAR || p === STR))
              hits.hit(SQLI_ORDER, from[i], to[a]);
            sqlKeywords++;
          }
        } else if (w === K_INTO) {
          const a = next(i);
          if (isKw(a, K_OUTFILE)) hits.hit(SQLI_DANGEROUS, from[i], to[a]);
        } else if (w === K_WAITFOR) {
          const a = next(i);
          if ((isKw(a, K_DELAY) || (a < n && kind[a] === WORD && text(s, a) === 'time')) && next(a) < n)
            hits.hit(SQLI_TIME, from[i], to[next(a)]);
        } else if (w === K_DECLARE) {
          const a = next(i);
          if (a < n && kind[a] === VAR && (i === start || kind[i - 1] === SEMI))
            hits.hit(SQLI_STACKED, from[i], to[a]);
        } else if (w === K_EXEC) {
          if (execTarget(s, next(i)) && (i === start || kind[i - 1] === SEMI || kind[i - 1] === STR))
            hits.hit(SQLI_STACKED, from[i], to[next(i)]);
        } else if (w === K_CASE) {
          let j = next(i);
          // CASE [expr] WHEN ... THEN, within a few tokens
          for (let m = 0; m < 6 && j < n; m++, j = next(j)) {
            if (isKw(j, K_WHEN)) {
              let t = next(j);
              let sql = 0;
              let words = 0;
              for (let q = 0; q < 8 && t < n; q++, t = next(t)) {
                if (isKw(t, K_THEN)) {
                  const a = next(t);
                  if (sql > 0 && words <= 1 && a < n && kind[a] !== WORD) hits.hit(SQLI_CASE, from[i], to[t]);
                  break;
                }
                const kt = kind[t];
                if (kt === WORD) words++;
                else if (kt === NUM || kt === STR || kt === FUNC || kt === CMP) sql++;
              }
              break;
            }
          }
        } else if (
          w === K_INSERT ||
          w === K_UPDATE ||
          w === K_DELETE ||
          w === K_DROP ||
          w === K_FROM ||
          w === K_SHUTDOWN
        ) {
          sqlKeywords++;
        }
        break;
      }
      case LOGIC: {
        const j = next(i);
        let a = j;
        if (isKw(a, K_NOT)) a = next(a);
        let b = a;
        while (b < n && kind[b] === LPAR) b = next(b);
        if (isKw(b, K_SELECT) && selectExpr(b)) {
          hits.hit(SQLI_SUBQUERY, from[i], to[b]);
          break;
        }
        if (isKw(b, K_EXISTS)) {
          hits.hit(SQLI_TAUTOLOGY, from[i], to[b]);
          break;
        }
        const end = comparison(s, b);
        if (end >= 0) {
          hits.hit(SQLI_TAUTOLOGY, from[i], to[end]);
          break;
        }
        // OR ISNULL(1/0), AND CHAR(124), || ELT(..): boolean logic on SQL functions
        if (b < n && kind[b] === FUNC && (SQL_FUNCS.has(text(s, b)) || text(s, b) === 'isnull')) {
          hits.hit(SQLI_TAUTOLOGY, from[i], to[b]);
          break;
        }
        // OR 1--, OR TRUE#, OR 'x'--: a constant, then the rest of the query cut off
        if (isConst(b)) {
          let c = b + 1;
          while (c < n && kind[c] === RPAR) c++;
          if (c < n && (kind[c] === COMMENT || kind[c] === SEMI) && (c === n - 1 || kind[c] === COMMENT))
            hits.hit(SQLI_TAUTOLOGY, from[i], to[c]);
        }
        break;
      }
      case SEMI: {
        if (stacked(s, next(i))) hits.hit(SQLI_STACKED, from[i], to[next(i)]);
        break;
      }
      case FUNC: {
        const name = qualified(s, i);
        const a = next(i); // (
        const arg = next(a);
        if (TIME_FUNCS.has(name) || name.endsWith('.sleep')) {
          if (name !== 'sleep' && name !== 'randomblob') hits.hit(SQLI_TIME, from[i], to[a]);
          else if (arg < n && (kind[arg] === NUM || kind[arg] === FUNC || kind[arg] === LPAR)) {
            hits.hit(SQLI_TIME, from[i], to[arg]);
          } else if (arg < n && kind[arg] !== RPAR && i > start) {
            const p = kind[i - 1];
            if (p === LOGIC || p === ARITH || p === CMP || p === SEMI || p === LPAR || p === KW || p === STR)
              hits.hit(SQLI_TIME, from[i], to[arg]);
          }
        } else if (a < n && kind[a] === LPAR && comparison(s, arg) >= 0 && isConst(arg)) {
          // IF(1=1, ..), IIF(2510=9436, ..): a constant condition
          hits.hit(SQLI_TAUTOLOGY, from[i], to[comparison(s, arg)]);
        } else if (DANGEROUS.has(name)) {
          hits.hit(SQLI_DANGEROUS, from[i], to[a]);
        } else if (SQL_FUNCS.has(name) && i > start) {
          const p = kind[i - 1];
          if (
            (p === LOGIC || p === ARITH || p === CMP || p === COMMA) &&
            arg < n &&
            kind[arg] !== RPAR &&
            i >= 2 &&
            kind[i - 2] !== WORD
          )
            hits.hit(SQLI_FUNC, from[i - 1], to[arg]);
        }
        break;
      }
      case WORD: {
        const len = to[i] - from[i];
        if (len >= 6 && len <= 20 && DANGEROUS.has(text(s, i)) && text(s, i) !== 'exp')
          hits.hit(SQLI_DANGEROUS, from[i], to[i]);
        break;
      }
      case VAR: {
        if (sub[i] === 1 && SYSVARS.has(text(s, i))) hits.hit(SQLI_DANGEROUS, from[i], to[i]);
        break;
      }
      case NUM: {
        if (to[i] - from[i] >= 12 && s.charCodeAt(from[i]) === 48 && s.charCodeAt(from[i] + 1) === 120)
          hits.hit(SQLI_HEX, from[i], to[i]);
        break;
      }
      case COMMENT: {
        // A value ending in a comment after a number, variable or bracket: 1--, @@version/*
        if (i === n - 1 && i > start && quote === 0 && sub[i] !== CM_HASH) {
          const p = kind[i - 1];
          if (p === NUM || p === VAR) hits.hit(SQLI_COMMENT, from[i - 1], to[i]);
        }
        break;
      }
    }
  }
  if (sqlKeywords >= 2) hits.hit(SQLI_KEYWORDS, from[start < n ? start : 0], to[n - 1]);
}

/**
 * Judges `s` (decoded, lower case) as SQL in each context it may be in, reporting to `hits`.
 */
export function scanSqli(s: string, hits: Hits): void {
  tokenize(s, 0);
  judge(s, 0, hits);
  if (s.indexOf("'") >= 0) {
    tokenize(s, 39);
    if (n > 0) judge(s, 39, hits);
  }
  if (s.indexOf('"') >= 0) {
    tokenize(s, 34);
    if (n > 0) judge(s, 34, hits);
  }
}

/** Tests and tuning: the tokens of `s` in a context, as [kind, sub, text]. */
export function tokensOf(s: string, quote: number): [number, number, string][] {
  tokenize(s, quote);
  const out: [number, number, string][] = [];
  for (let i = 0; i < n; i++) out.push([kind[i], sub[i], s.slice(from[i], to[i])]);
  return out;
}
