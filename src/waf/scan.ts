// One input value through every detector: decode (decode.ts), then SQL (sqli.ts), script
// (xss.ts), path traversal, command injection and header injection (here). Hand-written
// scanners with indexOf and bounded look-ahead only: linear in the value's length.
import { clearDecodeFlags, decodeFlags, decodeValue, F_MULTI, F_NUL, F_OVERLONG } from './decode.ts';
import {
  PROTO_CRLF,
  PROTO_MULTI_ENCODED,
  PROTO_NUL,
  PROTO_OVERLONG,
  RCE_CHAIN,
  RCE_CODE,
  RCE_IFS,
  RCE_SHELL_PATH,
  RCE_SHELLSHOCK,
  RCE_SSI,
  RCE_START,
  RCE_SUBST,
  TRAV_DOTDOT,
  TRAV_DOTDOT_ONE,
  TRAV_FILE,
  TRAV_SYSTEM_PATH,
} from './rules.ts';
import { scanSqli } from './sqli.ts';
import { scanXss } from './xss.ts';

/** Where detectors report: a rule matched `value[start, end)` of the value being scanned. */
export interface Hits {
  /** The lower-case normalised form of the value being scanned: what `start` and `end` index. */
  value: string;
  hit(rule: number, start: number, end: number): void;
}

// ---------------------------------------------------------------- path traversal

/** Sensitive files and directories, with `/` for any separator, lower case. */
const SENSITIVE = [
  'etc/passwd',
  'etc/shadow',
  'etc/master.passwd',
  'etc/sudoers',
  'etc/group',
  'etc/hosts',
  'etc/issue',
  'etc/crontab',
  'etc/fstab',
  'etc/ssh/',
  'etc/mysql/',
  'etc/apache',
  'etc/httpd',
  'etc/nginx/',
  'etc/php',
  'etc/my.cnf',
  'etc/resolv.conf',
  'etc/security/',
  'proc/self/',
  'proc/version',
  'proc/cmdline',
  'boot.ini',
  'win.ini',
  'system.ini',
  'windows/system32',
  'winnt/system32',
  'winnt/',
  'system32/',
  'cmd.exe',
  'inetpub/',
  'global.asa',
  'localstart.asp',
  'metabase.xml',
  '.htpasswd',
  '.htaccess',
  '.bash_history',
  '.ssh/',
  'id_rsa',
  'wp-config.php',
  'web.config',
  'boot/grub',
  '/var/log/',
  'access.log',
  'access_log',
  'error.log',
  'error_log',
  'httpd.conf',
  'php.ini',
  'server.xml',
  'desktop.ini',
];

/** SENSITIVE by first character (a leading `/` dropped): one look-up per path segment start. */
const BY_FIRST = new Map<number, string[]>();
for (const f of SENSITIVE) {
  const name = f.charCodeAt(0) === 47 ? f.slice(1) : f;
  const list = BY_FIRST.get(name.charCodeAt(0)) ?? [];
  list.push(name);
  BY_FIRST.set(name.charCodeAt(0), list);
}

/**
 * Where a sensitive file or directory starts in `p` (separators unified to `/`), or -1. A name
 * must start a segment: at the start or after `/`; `etc/passwd` and `etc/shadow` also after `:`,
 * `=` or a space (file:etc/passwd, cat etc/passwd); bare names (win.ini, .htaccess) need a `/`.
 */
function sensitiveFile(p: string): number {
  // etc/passwd and etc/shadow after `:`, `=` or a space too
  for (const name of ['etc/passwd', 'etc/shadow']) {
    const i = p.indexOf(name);
    if (i >= 0) {
      const b = i > 0 ? p.charCodeAt(i - 1) : 47;
      if (b === 47 || b === 58 || b === 61 || b === 32) return i;
    }
  }
  // every other name at the start of the value or of a segment
  for (let k = -1; ; ) {
    const i = k + 1;
    const list = BY_FIRST.get(p.charCodeAt(i));
    if (list !== undefined) {
      for (const name of list) {
        if (!p.startsWith(name, i)) continue;
        if (k < 0 && name.indexOf('/') < 0) continue; // bare names need a path before them
        return Math.max(k, 0);
      }
    }
    k = p.indexOf('/', i);
    if (k < 0) return -1;
  }
}

function isSep(c: number): boolean {
  return c === 47 || c === 92;
}

/** Separators unified to `/`: the form the file checks read. */
function slashes(s: string): string {
  return s.indexOf('\\') >= 0 ? s.split('\\').join('/') : s;
}

function scanTraversal(s: string, raw: string, flags: number, pl: number, hits: Hits): void {
  // `..` followed by a separator (or preceded by one and ending the value)
  let count = 0;
  let first = -1;
  const len = s.length;
  for (let i = s.indexOf('..'); i >= 0; ) {
    // a run of dots (`..`, `...`, `....//`) counts once, at its end
    let e = i + 2;
    while (e < len && s.charCodeAt(e) === 46) e++;
    const after = s.charCodeAt(e);
    const before = i > 0 ? s.charCodeAt(i - 1) : 0;
    if (
      isSep(after) ||
      after === 59 /* ..;/ */ ||
      (isSep(before) && e - i === 2 && (e === len || after === 37)) /* ..% */
    ) {
      count++;
      if (first < 0) first = i;
    }
    i = s.indexOf('..', e);
  }
  if (count > 0) {
    // dots are unreserved: no client encodes them, an evasion does (%2e, %252e, %u002e, %c0%ae)
    const encoded =
      (flags & F_OVERLONG) !== 0 ||
      raw.indexOf('%2e') >= 0 ||
      raw.indexOf('%252e') >= 0 ||
      raw.indexOf('%u002e') >= 0;
    if (count >= 2 || encoded || (flags & F_NUL) !== 0)
      hits.hit(TRAV_DOTDOT, first, Math.min(len, first + 64));
    else if (pl >= 2) hits.hit(TRAV_DOTDOT_ONE, first, Math.min(len, first + 64));
  }
  const p = slashes(s);
  const f = sensitiveFile(p);
  if (f >= 0) hits.hit(TRAV_FILE, f, Math.min(len, f + 64));
  if (pl >= 2) {
    for (const d of [
      '/etc/',
      '/var/log',
      '/root/',
      '/proc/',
      'c:/windows',
      'c:/winnt',
      '/usr/bin/',
      '/bin/',
    ]) {
      const i = p.indexOf(d);
      if (i >= 0 && (d.charCodeAt(0) !== 99 || i === 0 || !isIdent(p.charCodeAt(i - 1)))) {
        hits.hit(TRAV_SYSTEM_PATH, i, Math.min(len, i + 64));
        break;
      }
    }
  }
}

// ---------------------------------------------------------------- command injection

/**
 * Commands an injection runs. Words common in prose are left out (find, type, set, more, date,
 * time, sort, free, make, host, head, tail, test); `net` and `reg` need a subcommand.
 */
const COMMANDS = new Set(
  (
    'id whoami uname cat ls pwd ping nc ncat netcat curl wget bash sh zsh ksh csh dash tcsh fish python python2 ' +
    'python3 perl ruby php node lua nslookup ifconfig ipconfig netstat netsh powershell pwsh cmd echo sleep rm ' +
    'chmod chown kill killall pkill ps grep egrep awk gawk sed nmap telnet ssh scp ftp tftp base64 xxd hostname ' +
    'sysinfo systeminfo tasklist taskkill dir certutil bitsadmin mshta rundll32 regsvr32 wmic crontab useradd ' +
    'passwd sudo su xterm socat openssl busybox whoami uptime printenv env phpinfo cscript wscript'
  ).split(' '),
);
const SUBCOMMANDS: Record<string, string[]> = {
  net: ['user', 'localgroup', 'view', 'share', 'use', 'start', 'stop', 'group', 'session', 'accounts'],
  reg: ['add', 'query', 'delete', 'save', 'export', 'import'],
};

function isIdent(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || (c >= 65 && c <= 90);
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 11 || c === 12;
}

/** How much must follow a command name: nothing, an end or an argument, an argument. */
const LOOSE = 0;
const STRICT = 1;
const ARGUMENT = 2;

/**
 * At `i` (after a separator): a known command, with an optional path prefix. Returns the index
 * after what matched, or -1. `mode`: LOOSE after ; | & ` $( (the separator says enough); STRICT
 * after a newline (an end, an option, a path, a URL or a number must follow); ARGUMENT at the
 * start of a value (one of those must follow, not the end).
 */
function command(s: string, i: number, mode: number): number {
  const len = s.length;
  // quotes, brackets and braces an injection puts around the command
  while (i < len) {
    const c = s.charCodeAt(i);
    if (c === 39 || c === 34 || c === 40 || c === 123 || isBlank(c)) i++;
    else break;
  }
  // /bin/, /usr/bin/, /usr/local/bin/, c:\windows\system32\
  for (const prefix of ['/usr/local/bin/', '/usr/bin/', '/bin/', '/usr/sbin/', '/sbin/', 'usr/bin/']) {
    if (s.startsWith(prefix, i)) {
      i += prefix.length;
      break;
    }
  }
  let j = i;
  while (j < len && isIdent(s.charCodeAt(j))) j++;
  if (j === i || j - i > 12) return -1;
  const word = s.slice(i, j);
  const after = s.charCodeAt(j);
  const boundary =
    j >= len ||
    isBlank(after) ||
    after === 59 ||
    after === 124 ||
    after === 38 ||
    after === 60 ||
    after === 62 ||
    after === 41 ||
    after === 96 ||
    after === 36 ||
    after === 39 ||
    after === 34 ||
    after === 10 ||
    after === 13 ||
    after === 92 ||
    after === 125;
  if (!boundary) return -1;
  const sc = SUBCOMMANDS[word];
  if (sc !== undefined) {
    let k = j;
    while (k < len && isBlank(s.charCodeAt(k))) k++;
    let e = k;
    while (e < len && isIdent(s.charCodeAt(e))) e++;
    return sc.includes(s.slice(k, e)) ? e : -1;
  }
  if (!COMMANDS.has(word)) return -1;
  if (mode === LOOSE) return j;
  if (
    mode === STRICT &&
    (j >= len || after === 59 || after === 124 || after === 38 || after === 96 || after === 10)
  )
    return j;
  let k = j;
  while (k < len && isBlank(s.charCodeAt(k))) k++;
  const c = s.charCodeAt(k);
  if (mode === STRICT && (k >= len || c === 10 || c === 13)) return k;
  if (c === 45 /* - */ || c === 47 /* / */ || c === 36 /* $ */ || c === 126 /* ~ */ || c === 92) return k + 1;
  if (s.startsWith('http', k) || s.startsWith('c:', k)) return k + 2;
  if (c >= 48 && c <= 57 && word !== 'echo') return k + 1; // sleep 5, ping 127.0.0.1
  return -1;
}

function scanRce(s: string, hits: Hits): void {
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c > 124 || (CLASS[c] & (C_SHELL | C_BRACE | C_BACKSLASH)) === 0) continue;
    let start = -1;
    let mode = LOOSE;
    if (c === 59 || c === 124 || c === 38) {
      start = i + 1;
      if (s.charCodeAt(start) === c) start++; // || &&
    } else if (c === 10 || c === 13) {
      start = i + 1;
      mode = STRICT;
    } else if (c === 92 /* a literal \n, for sinks that unescape */ && s.charCodeAt(i + 1) === 110) {
      start = i + 2;
      mode = STRICT;
    } else if (c === 96 /* ` */) {
      const e = command(s, i + 1, LOOSE);
      if (e > 0) {
        hits.hit(RCE_SUBST, i, Math.min(len, e + 16));
        return;
      }
      continue;
    } else if (c === 36 /* $ */) {
      const d = s.charCodeAt(i + 1);
      if (d === 40 /* $( */) {
        const e = s.charCodeAt(i + 2) === 96 ? i + 3 : command(s, i + 2, LOOSE);
        if (e > 0) {
          hits.hit(RCE_SUBST, i, Math.min(len, e + 16));
          return;
        }
      } else if (
        s.startsWith('{ifs', i + 1) ||
        s.startsWith('ifs', i + 1) ||
        s.startsWith('{path:', i + 1) ||
        s.startsWith('{home:', i + 1)
      ) {
        hits.hit(RCE_IFS, i, Math.min(len, i + 16));
        return;
      } else if (d === 123 /* ${@ ${${ */ && (s.charCodeAt(i + 2) === 64 || s.charCodeAt(i + 2) === 36)) {
        hits.hit(RCE_CODE, i, Math.min(len, i + 32));
        return;
      }
      continue;
    } else if (c === 123 /* { */ && s.charCodeAt(i + 1) === 36 && s.charCodeAt(i + 2) === 123) {
      hits.hit(RCE_CODE, i, Math.min(len, i + 32));
      return;
    } else continue;
    const e = command(s, start, mode);
    if (e > 0) {
      hits.hit(RCE_CHAIN, i, Math.min(len, e + 16));
      return;
    }
  }
}

/** Functions that run code or commands (PHP, and a few of Python, Java and Node). */
const CODE_CALLS = new Set([
  'system',
  'exec',
  'shell_exec',
  'passthru',
  'popen',
  'proc_open',
  'pcntl_exec',
  'phpinfo',
  'assert',
  'create_function',
  'call_user_func',
  'processbuilder',
]);

function isChain(c: number): boolean {
  return isIdent(c) || c === 46 || c === 36;
}

function scanCode(s: string, hits: Hits): void {
  const len = s.length;
  let i = s.indexOf('<?');
  if (i >= 0 && (s.startsWith('php', i + 2) || s.charCodeAt(i + 2) === 61)) {
    hits.hit(RCE_CODE, i, Math.min(len, i + 32));
    return;
  }
  i = s.indexOf('<!--#');
  if (
    i >= 0 &&
    (s.startsWith('exec', i + 5) || s.startsWith('include', i + 5) || s.startsWith('echo', i + 5))
  ) {
    hits.hit(RCE_SSI, i, Math.min(len, i + 32));
    return;
  }
  // PHP superglobals: $_GET[, $_POST[, ...
  for (let k = s.indexOf('$_'); k >= 0; k = s.indexOf('$_', k + 2)) {
    let e = k + 2;
    while (e < len && e - k < 12 && isIdent(s.charCodeAt(e))) e++;
    const g = s.slice(k + 2, e);
    if (
      s.charCodeAt(e) === 91 &&
      (g === 'get' || g === 'post' || g === 'request' || g === 'cookie' || g === 'server' || g === 'files')
    ) {
      hits.hit(RCE_CODE, k, Math.min(len, k + 32));
      return;
    }
  }
  // calls: the dotted name before each `(`
  for (let p = s.indexOf('('); p >= 0; p = s.indexOf('(', p + 1)) {
    let b = p;
    while (b > 0 && p - b < 40 && isChain(s.charCodeAt(b - 1))) b--;
    if (b === p) continue;
    const chain = s.slice(b, p);
    const dot = chain.lastIndexOf('.');
    const name = dot < 0 ? chain : chain.slice(dot + 1);
    const owner = dot < 0 ? '' : chain.slice(0, dot);
    let hit = false;
    if (CODE_CALLS.has(name)) {
      // exec with an @ argument is T-SQL (sqli.ts); a method of another object (db, regex) is not code execution, os is
      hit = (owner === '' || owner === 'os' || owner.endsWith('runtime()')) && s.charCodeAt(p + 1) !== 64;
    } else if (owner === 'os' && (name === 'popen' || name.startsWith('spawn') || name.startsWith('exec')))
      hit = true;
    else if (owner === 'subprocess' || owner.startsWith('subprocess.')) hit = true;
    else if (name === 'getruntime' && owner.endsWith('runtime')) hit = true;
    else if (
      name === 'require' &&
      (s.startsWith("'child_process", p + 1) || s.startsWith('"child_process', p + 1))
    )
      hit = true;
    if (hit) {
      hits.hit(RCE_CODE, b, Math.min(len, p + 32));
      return;
    }
  }
}

function scanShellPath(s: string, hits: Hits): void {
  for (const prefix of ['/bin/', '/usr/bin/', '/sbin/', '/usr/sbin/', '/usr/local/bin/']) {
    for (let i = s.indexOf(prefix); i >= 0; i = s.indexOf(prefix, i + 1)) {
      if (i > 0 && isIdent(s.charCodeAt(i - 1))) continue; // /usr/local/bin is its own prefix
      const e = command(s, i + prefix.length, LOOSE);
      if (e > 0) {
        hits.hit(RCE_SHELL_PATH, i, Math.min(s.length, e + 16));
        return;
      }
    }
  }
}

// ---------------------------------------------------------------- header injection

const INJECTED_HEADERS = [
  'content-length',
  'transfer-encoding',
  'content-type',
  'set-cookie',
  'location',
  'host',
  'refresh',
  'x-forwarded-for',
];
const METHODS = ['get ', 'post ', 'head ', 'put ', 'delete ', 'options ', 'patch ', 'connect ', 'trace '];

function scanCrlf(s: string, hits: Hits): void {
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c !== 10 && c !== 13) continue;
    let j = i + 1;
    while (j < len && (s.charCodeAt(j) === 10 || s.charCodeAt(j) === 13 || isBlank(s.charCodeAt(j)))) j++;
    for (const h of INJECTED_HEADERS) {
      if (s.startsWith(h, j)) {
        let k = j + h.length;
        while (k < len && isBlank(s.charCodeAt(k))) k++;
        if (s.charCodeAt(k) === 58) {
          hits.hit(PROTO_CRLF, i, Math.min(len, i + 64));
          return;
        }
      }
    }
    for (const m of METHODS) {
      if (s.startsWith(m, j)) {
        const sp = s.indexOf(' ', j + m.length);
        if (sp > 0 && sp - j < 2048 && s.startsWith('http/', sp + 1)) {
          hits.hit(PROTO_CRLF, i, Math.min(len, i + 64));
          return;
        }
      }
    }
    i = j - 1;
  }
}

// ---------------------------------------------------------------- one value

/** Which characters a value holds: decides which detectors it can interest. */
const C_QUOTE = 1;
const C_SPACE = 2;
const C_LT = 4;
const C_SLASH = 8;
const C_SHELL = 16; // ; | & ` $ \n \r
const C_PAREN = 32;
const C_SQLOP = 64; // = # @ - (--), *
const C_COLON = 128;
const C_DOT = 256;
const C_BRACE = 512;
/** Not for detectors: the value needs decoding (% & \ NUL, or + in a query) or lower-casing. */
const C_PERCENT = 1024;
const C_AMP = 2048;
const C_BACKSLASH = 4096;
const C_NUL = 8192;
const C_PLUS = 16384;
const C_UPPER = 32768;

/** Flags of each ASCII character (classify). */
const CLASS = new Uint16Array(128);
for (let c = 65; c <= 90; c++) CLASS[c] = C_UPPER;
CLASS[37] = C_PERCENT;
CLASS[43] = C_PLUS;
CLASS[0] = C_NUL;
CLASS[39] = C_QUOTE;
CLASS[34] = C_QUOTE;
CLASS[32] = C_SPACE;
CLASS[9] = C_SPACE;
CLASS[11] = C_SPACE;
CLASS[12] = C_SPACE;
CLASS[10] = C_SHELL | C_SPACE;
CLASS[13] = C_SHELL | C_SPACE;
CLASS[60] = C_LT;
CLASS[47] = C_SLASH;
CLASS[92] = C_SLASH | C_BACKSLASH;
CLASS[59] = C_SHELL;
CLASS[124] = C_SHELL;
CLASS[38] = C_SHELL | C_AMP;
CLASS[96] = C_SHELL;
CLASS[36] = C_SHELL;
CLASS[40] = C_PAREN;
CLASS[41] = C_PAREN;
CLASS[61] = C_SQLOP;
CLASS[35] = C_SQLOP;
CLASS[64] = C_SQLOP;
CLASS[42] = C_SQLOP;
CLASS[58] = C_COLON;
CLASS[46] = C_DOT;
CLASS[123] = C_BRACE;
CLASS[125] = C_BRACE;

function classify(s: string): number {
  let m = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      m |= CLASS[c];
      // `--` only: a lone hyphen is everywhere
      if (c === 45 && s.charCodeAt(i + 1) === 45) m |= C_SQLOP;
    } else m |= C_SPACE; // Unicode spaces and quotes: let the tokenizers judge
  }
  return m;
}

export interface ScanOptions {
  paranoia: number;
  /** `+` is a space (query strings and form bodies). */
  plus: boolean;
  /** Also look for header injection (CR/LF then a header): query, form, JSON, header values. */
  crlf: boolean;
}

/**
 * Scans one raw value. Reports to `hits` with positions in the returned lower-case normalised
 * form (so that the caller can quote what matched). Returns that form.
 */
export function scanValue(raw: string, opts: ScanOptions, hits: Hits): string {
  let m = classify(raw);
  let s: string;
  let flags = 0;
  if ((m & (C_PERCENT | C_AMP | C_BACKSLASH | C_NUL)) !== 0 || (opts.plus && (m & C_PLUS) !== 0)) {
    s = decodeValue(raw, opts.plus).toLowerCase();
    flags = decodeFlags;
    m = classify(s);
  } else {
    clearDecodeFlags();
    if ((m & ~(C_UPPER | C_PLUS)) === 0) {
      hits.value = raw;
      return raw; // letters and digits only: nothing any detector looks for
    }
    s = (m & C_UPPER) !== 0 ? raw.toLowerCase() : raw;
  }
  hits.value = s;
  const pl = opts.paranoia;
  if ((flags & F_NUL) !== 0) hits.hit(PROTO_NUL, 0, Math.min(s.length, 64));
  if ((flags & F_OVERLONG) !== 0) hits.hit(PROTO_OVERLONG, 0, Math.min(s.length, 64));
  if ((flags & F_MULTI) !== 0 && pl >= 3) hits.hit(PROTO_MULTI_ENCODED, 0, Math.min(s.length, 64));
  m &= ~(C_PERCENT | C_AMP | C_BACKSLASH | C_NUL | C_PLUS | C_UPPER);
  if (m === 0) return s; // letters and digits only
  if ((m & (C_QUOTE | C_SPACE | C_PAREN | C_SQLOP | C_SHELL)) !== 0 || (m & C_SLASH) !== 0) scanSqli(s, hits);
  if (
    (m & (C_LT | C_PAREN | C_COLON | C_SHELL | C_SQLOP)) !== 0 ||
    (pl >= 2 && (m & C_DOT) !== 0) ||
    (m & C_BRACE) !== 0
  )
    scanXss(s, pl, hits);
  if ((m & C_SLASH) !== 0) scanTraversal(s, raw.toLowerCase(), flags, pl, hits);
  if ((m & (C_SHELL | C_PAREN | C_BRACE)) !== 0) scanRce(s, hits);
  if ((m & (C_LT | C_PAREN)) !== 0 || ((m & C_SHELL) !== 0 && s.indexOf('$_') >= 0)) scanCode(s, hits);
  if ((m & C_SLASH) !== 0) scanShellPath(s, hits);
  if ((m & C_PAREN) !== 0) {
    let i = 0;
    while (i < s.length && isBlank(s.charCodeAt(i))) i++;
    if (s.startsWith('()', i)) {
      let j = i + 2;
      while (j < s.length && isBlank(s.charCodeAt(j))) j++;
      if (s.charCodeAt(j) === 123) hits.hit(RCE_SHELLSHOCK, i, Math.min(s.length, i + 32));
    }
  }
  if (pl >= 2 && (m & C_SPACE) !== 0) {
    const e = command(s, 0, ARGUMENT);
    if (e > 0) hits.hit(RCE_START, 0, Math.min(s.length, e + 16));
  }
  if (opts.crlf && (m & C_SHELL) !== 0 && (s.indexOf('\n') >= 0 || s.indexOf('\r') >= 0)) scanCrlf(s, hits);
  return s;
}
