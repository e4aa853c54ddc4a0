// Conditional requests, RFC 9110 §13: the four preconditions evaluated in the order of §13.2.2,
// entity-tag parsing and comparison (§8.8.3), If-Range (§13.1.5) and HTTP-date (§5.6.7).
// Pure functions over strings: no I/O, no clock except where a function says it reads one.

/** The validators of the selected representation, as its 200 response would carry them. */
export interface Validators {
  /** The ETag field value as sent, quotes and any W/ included. */
  etag?: string;
  /** The Last-Modified field value as sent (an HTTP-date). */
  lastModified?: string;
}

export type RequestHeaders = Record<string, string | string[] | undefined>;

/**
 * RFC 9110 §13.2.2, in its order: If-Match, If-Unmodified-Since (only without If-Match),
 * If-None-Match, If-Modified-Since (GET/HEAD only, only without If-None-Match). The resource
 * exists (so `*` matches it). Step 5 (If-Range) is not here: see ifRangeMatches.
 *
 * The caller decides when to ask. §13.2.1: preconditions are ignored when the response without
 * them would not be a 2xx or 412; and a 412 from steps 1-2 may be replaced by a 2xx when the
 * server can tell the state change already succeeded (§13.1.1, §13.1.4), which only the caller
 * can know. A cache, not being the origin server, does not evaluate If-Match or
 * If-Unmodified-Since at all (RFC 9111 §4.3.2): it forwards such requests instead.
 */
export function evaluateConditionals(
  method: string,
  headers: RequestHeaders,
  v: Validators,
): 'proceed' | 304 | 412 {
  // §13.2.1: conditionals are ignored for methods that neither select nor modify a
  // representation. Method names are case-sensitive (§9.1): "get" is not GET.
  if (method === 'CONNECT' || method === 'OPTIONS' || method === 'TRACE') return 'proceed';
  const getOrHead = method === 'GET' || method === 'HEAD';

  // Step 1: If-Match, strong comparison (§13.1.1).
  const ifMatch = listField(headers, 'if-match');
  if (ifMatch !== undefined) {
    if (!ifMatchHolds(ifMatch, v)) return 412;
  } else {
    // Step 2: If-Unmodified-Since, only without If-Match (§13.1.4).
    const since = dateField(headers, 'if-unmodified-since');
    const lm = v.lastModified === undefined ? undefined : parseHttpDate(v.lastModified);
    // Ignored when the value is not one valid HTTP-date or the resource has no modification date.
    if (since !== undefined && lm !== undefined && lm > since) return 412;
  }

  // Step 3: If-None-Match, weak comparison (§13.1.2).
  const ifNoneMatch = listField(headers, 'if-none-match');
  if (ifNoneMatch !== undefined) {
    const holds = ifNoneMatchHolds(ifNoneMatch, v);
    if (holds === false) return getOrHead ? 304 : 412;
    // A value we cannot parse: the RFC does not say. For GET/HEAD the full response is always a
    // correct answer, so the condition is taken as true (as Go's net/http does). For any other
    // method a condition we cannot read does not let a state change through: 412.
    if (holds === 'malformed' && !getOrHead) return 412;
    // With If-None-Match present, If-Modified-Since is ignored (§13.1.3), even if it was malformed.
    return 'proceed';
  }

  // Step 4: If-Modified-Since, GET/HEAD only (§13.1.3). Ignored when not one valid HTTP-date, or
  // when the resource has no modification date. RFC 9110 has no rule for a date later than the
  // server's clock (RFC 2616 §14.25 called one invalid; RFC 7232 and 9110 dropped that), so a
  // future date is compared like any other: Last-Modified is earlier, the condition is false, 304.
  if (getOrHead) {
    const since = dateField(headers, 'if-modified-since');
    const lm = v.lastModified === undefined ? undefined : parseHttpDate(v.lastModified);
    if (since !== undefined && lm !== undefined && lm <= since) return 304;
  }
  return 'proceed';
}

function ifMatchHolds(value: string, v: Validators): boolean {
  const tags = parseEntityTags(value);
  // Malformed: nothing in it can be shown to match, and If-Match guards state changes, so false.
  if (tags === null) return false;
  // `*`: true when the origin server has a current representation, which the caller asserts.
  if (tags === '*') return true;
  const etag = v.etag;
  return etag !== undefined && tags.some((t) => strongCompare(t, etag));
}

function ifNoneMatchHolds(value: string, v: Validators): boolean | 'malformed' {
  const tags = parseEntityTags(value);
  if (tags === null) return 'malformed';
  if (tags === '*') return false;
  const etag = v.etag;
  return !(etag !== undefined && tags.some((t) => weakCompare(t, etag)));
}

/** A header by lowercase name; other spellings of the name too, for maps that were not lowercased. */
function field(headers: RequestHeaders, name: string): string | string[] | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const key of Object.keys(headers)) {
    if (key.length === name.length && key.toLowerCase() === name) return headers[key];
  }
  return undefined;
}

/** A list-valued field: several field lines combine into one list with ", " (§5.3). */
function listField(headers: RequestHeaders, name: string): string | undefined {
  const value = field(headers, name);
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * A single-date field as ms since the epoch, or undefined when it is to be ignored: absent, not a
 * valid HTTP-date, or more than one member. Two field lines are a list of dates (§13.1.3, §13.1.4);
 * "Sun, 06 Nov 1994 ..., Mon, 07 Nov ..." in one line fails the date grammar on its own.
 */
function dateField(headers: RequestHeaders, name: string): number | undefined {
  const value = field(headers, name);
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length === 1 ? parseHttpDate(value[0]!) : undefined;
  return parseHttpDate(value);
}

// ---------------------------------------------------------------------------------------------
// Entity tags, §8.8.3:
//   entity-tag = [ weak ] opaque-tag     weak = %s"W/"     opaque-tag = DQUOTE *etagc DQUOTE
//   etagc      = %x21 / %x23-7E / obs-text
// If-Match / If-None-Match = "*" / #entity-tag

const OWS = (c: number): boolean => c === 0x20 || c === 0x09;
const trimOWS = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, '');
const ETAGC = (c: number): boolean => c === 0x21 || (c >= 0x23 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);

/** The end of the entity-tag that starts at i in s, or -1 when none starts there. */
function scanEntityTag(s: string, i: number): number {
  if (s.charCodeAt(i) === 0x57 /* W */ && s.charCodeAt(i + 1) === 0x2f /* / */) i += 2;
  if (s.charCodeAt(i) !== 0x22) return -1;
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (!ETAGC(c)) return -1;
  }
  return -1;
}

/**
 * An If-Match / If-None-Match value: `'*'`, the entity tags as written (W/ and quotes kept), or
 * null when malformed. Empty list elements are skipped (§5.6.1.2), so "" and ", ," are an empty
 * list, which matches nothing. `*` with anything else is invalid (§13.1.2), so null.
 */
export function parseEntityTags(value: string): '*' | string[] | null {
  const s = value;
  let i = 0;
  let end = s.length;
  while (i < end && OWS(s.charCodeAt(i))) i++;
  while (end > i && OWS(s.charCodeAt(end - 1))) end--;
  if (end - i === 1 && s.charCodeAt(i) === 0x2a) return '*';
  const tags: string[] = [];
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c === 0x2c || OWS(c)) {
      i++;
      continue;
    }
    const tagEnd = scanEntityTag(s, i);
    if (tagEnd < 0 || tagEnd > end) return null;
    tags.push(s.slice(i, tagEnd));
    i = tagEnd;
    while (i < end && OWS(s.charCodeAt(i))) i++;
    if (i < end && s.charCodeAt(i) !== 0x2c) return null;
  }
  return tags;
}

/** One whole entity-tag: [weak, opaque-tag], or null when `s` is not exactly one. */
function entityTag(s: string): [boolean, string] | null {
  const end = scanEntityTag(s, 0);
  if (end !== s.length) return null;
  const weak = s.charCodeAt(0) === 0x57;
  return [weak, s.slice(weak ? 2 : 0)];
}

/** §8.8.3.2: both not weak, and the opaque-tags identical character by character. */
export function strongCompare(a: string, b: string): boolean {
  const x = entityTag(a);
  const y = entityTag(b);
  return x !== null && y !== null && !x[0] && !y[0] && x[1] === y[1];
}

/** §8.8.3.2: the opaque-tags identical character by character, either or both may be weak. */
export function weakCompare(a: string, b: string): boolean {
  const x = entityTag(a);
  const y = entityTag(b);
  return x !== null && y !== null && x[1] === y[1];
}

/**
 * §13.1.5: whether the If-Range validator matches, so the Range is honoured. An entity tag (a
 * DQUOTE within the first three characters tells it from a date) matches with the strong
 * comparison, so a weak tag never does. A date matches only when it is exactly the Last-Modified
 * of the representation and that Last-Modified is a strong validator (§8.8.2.2): at least one
 * second older than `date`, the Date of the response being served (a stored response's Date for a
 * cache; the current time when omitted). Anything else, malformed values included, is false.
 * A server ignores If-Range without Range, and for methods other than GET (§13.2.2 step 5):
 * the caller's part.
 */
export function ifRangeMatches(ifRange: string, v: Validators, date?: string): boolean {
  const s = trimOWS(ifRange);
  if (s.slice(0, 3).includes('"')) {
    return v.etag !== undefined && strongCompare(s, v.etag);
  }
  const t = parseHttpDate(s);
  const lm = v.lastModified === undefined ? undefined : parseHttpDate(v.lastModified);
  // "Exactly matches the Last-Modified field value": compared as instants, so the same second in
  // another of the three formats also matches (nginx does the same).
  if (t === undefined || lm === undefined || t !== lm) return false;
  const served = date === undefined ? Date.now() : parseHttpDate(date);
  return served !== undefined && served - lm >= 1000;
}

// ---------------------------------------------------------------------------------------------
// HTTP-date, §5.6.7. All three formats are accepted (a recipient MUST); names are case-sensitive
// (%s"..." in the ABNF). The day name is checked for spelling, not against the date, as most
// parsers do.
//   IMF-fixdate  = day-name "," SP 2DIGIT SP month SP 4DIGIT SP hh:mm:ss SP "GMT"
//   rfc850-date  = day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP hh:mm:ss SP "GMT"
//   asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP hh:mm:ss SP 4DIGIT

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DAY_L = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '(\\d\\d):(\\d\\d):(\\d\\d)';
const IMF = new RegExp(`^${DAY}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850 = new RegExp(`^${DAY_L}, (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^${DAY} ${MONTH} (\\d\\d| \\d) ${TIME} (\\d{4})$`);

/** An HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms) as ms since the epoch. */
export function parseHttpDate(s: string): number | undefined {
  const v = trimOWS(s);
  let m = IMF.exec(v);
  if (m) return instant(+m[3]!, m[2]!, +m[1]!, +m[4]!, +m[5]!, +m[6]!);
  m = RFC850.exec(v);
  if (m) {
    // §5.6.7: a two-digit year more than 50 years in the future is the most recent past year
    // with the same last two digits.
    const now = new Date().getUTCFullYear();
    let year = now - (now % 100) + +m[3]!;
    if (year > now + 50) year -= 100;
    else if (year <= now - 50) year += 100;
    return instant(year, m[2]!, +m[1]!, +m[4]!, +m[5]!, +m[6]!);
  }
  m = ASCTIME.exec(v);
  if (m) return instant(+m[6]!, m[1]!, +m[2]!.trim(), +m[3]!, +m[4]!, +m[5]!);
  return undefined;
}

function instant(year: number, month: string, day: number, h: number, min: number, sec: number) {
  const mon = MONTHS.indexOf(month);
  const days = new Date(Date.UTC(2000, mon + 1, 0)).getUTCDate() + (mon === 1 && !leap(year) ? -1 : 0);
  // time-of-day 00:00:00 to 23:59:60 (60: a leap second, §5.6.7).
  if (day < 1 || day > days || h > 23 || min > 59 || sec > 60) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(year, mon, day); // not Date.UTC, which maps years 0-99 to 1900-1999
  d.setUTCHours(h, min, sec, 0);
  return d.getTime();
}

function leap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}
