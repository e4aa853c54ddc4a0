// RFC 9110 §13 (conditional requests), §8.8.3 (entity tags) and §5.6.7 (HTTP-date), through
// src/http/conditional.ts. Examples marked "RFC" are the RFC's own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  evaluateConditionals,
  ifRangeMatches,
  parseEntityTags,
  parseHttpDate,
  strongCompare,
  type Validators,
  weakCompare,
} from '../../src/http/conditional.ts';

const LM = 'Sat, 29 Oct 1994 19:43:31 GMT'; // RFC §13.1.3, §13.1.4 example date
const EARLIER = 'Fri, 28 Oct 1994 19:43:31 GMT';
const LATER = 'Sun, 30 Oct 1994 19:43:31 GMT';
const V: Validators = { etag: '"xyzzy"', lastModified: LM };
const WEAK: Validators = { etag: 'W/"xyzzy"', lastModified: LM };

const ev = (method: string, headers: Record<string, string | string[] | undefined>, v: Validators = V) =>
  evaluateConditionals(method, headers, v);

// ---- §13.2.2 evaluation -----------------------------------------------------------------------

test('no preconditions: proceed', () => {
  assert.equal(ev('GET', {}), 'proceed');
  assert.equal(ev('PUT', { 'content-type': 'text/plain' }), 'proceed');
});

test('If-Match (§13.1.1): strong comparison, * matches the existing resource, otherwise 412', () => {
  assert.equal(ev('PUT', { 'if-match': '"xyzzy"' }), 'proceed');
  // RFC §13.1.1 examples
  assert.equal(ev('PUT', { 'if-match': '"xyzzy", "r2d2xxxx", "c3piozzzz"' }), 'proceed');
  assert.equal(ev('PUT', { 'if-match': '*' }), 'proceed');
  assert.equal(ev('PUT', { 'if-match': '"r2d2xxxx", "c3piozzzz"' }), 412);
  // strong: a weak tag never matches, on either side
  assert.equal(ev('PUT', { 'if-match': 'W/"xyzzy"' }), 412);
  assert.equal(ev('PUT', { 'if-match': '"xyzzy"' }, WEAK), 412);
  assert.equal(ev('PUT', { 'if-match': 'W/"xyzzy"' }, WEAK), 412);
  assert.equal(ev('PUT', { 'if-match': '*' }, WEAK), 'proceed');
  // no entity tag: a list cannot match, * still does
  assert.equal(ev('PUT', { 'if-match': '"xyzzy"' }, { lastModified: LM }), 412);
  assert.equal(ev('PUT', { 'if-match': '*' }, {}), 'proceed');
  // GET too: If-Match is not limited to unsafe methods
  assert.equal(ev('GET', { 'if-match': '"nope"' }), 412);
  // malformed: fails closed
  assert.equal(ev('PUT', { 'if-match': 'xyzzy' }), 412);
  assert.equal(ev('PUT', { 'if-match': '*, "xyzzy"' }), 412);
  // an empty list matches nothing
  assert.equal(ev('PUT', { 'if-match': '' }), 412);
  // several field lines are one list (§5.3)
  assert.equal(ev('PUT', { 'if-match': ['"a"', '"xyzzy"'] }), 'proceed');
});

test('If-Unmodified-Since (§13.1.4): 412 when modified after the date; ignored with If-Match, when invalid, or without Last-Modified', () => {
  assert.equal(ev('PUT', { 'if-unmodified-since': LM }), 'proceed'); // equal: true
  assert.equal(ev('PUT', { 'if-unmodified-since': LATER }), 'proceed');
  assert.equal(ev('PUT', { 'if-unmodified-since': EARLIER }), 412);
  assert.equal(ev('GET', { 'if-unmodified-since': EARLIER }), 412);
  // only without If-Match: a passing If-Match wins over a failing If-Unmodified-Since
  assert.equal(ev('PUT', { 'if-match': '"xyzzy"', 'if-unmodified-since': EARLIER }), 'proceed');
  // ignored: not a valid HTTP-date, a list of dates, no modification date
  assert.equal(ev('PUT', { 'if-unmodified-since': 'yesterday' }), 'proceed');
  assert.equal(ev('PUT', { 'if-unmodified-since': `${EARLIER}, ${EARLIER}` }), 'proceed');
  assert.equal(ev('PUT', { 'if-unmodified-since': [EARLIER, EARLIER] }), 'proceed');
  assert.equal(ev('PUT', { 'if-unmodified-since': EARLIER }, { etag: '"xyzzy"' }), 'proceed');
  assert.equal(ev('PUT', { 'if-unmodified-since': EARLIER }, { lastModified: 'garbage' }), 'proceed');
  // one field line given as an array of one
  assert.equal(ev('PUT', { 'if-unmodified-since': [EARLIER] }), 412);
});

test('If-None-Match (§13.1.2): weak comparison; false is 304 for GET/HEAD, 412 for other methods', () => {
  assert.equal(ev('GET', { 'if-none-match': '"xyzzy"' }), 304);
  assert.equal(ev('HEAD', { 'if-none-match': '"xyzzy"' }), 304);
  assert.equal(ev('PUT', { 'if-none-match': '"xyzzy"' }), 412);
  assert.equal(ev('POST', { 'if-none-match': '"xyzzy"' }), 412);
  assert.equal(ev('DELETE', { 'if-none-match': '"xyzzy"' }), 412);
  // RFC §13.1.2 examples
  assert.equal(ev('GET', { 'if-none-match': 'W/"xyzzy"' }), 304);
  assert.equal(ev('GET', { 'if-none-match': '"xyzzy", "r2d2xxxx", "c3piozzzz"' }), 304);
  assert.equal(ev('GET', { 'if-none-match': 'W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"' }), 304);
  assert.equal(ev('GET', { 'if-none-match': '*' }), 304);
  assert.equal(ev('PUT', { 'if-none-match': '*' }), 412);
  // weak: W/ on either side still matches
  assert.equal(ev('GET', { 'if-none-match': '"xyzzy"' }, WEAK), 304);
  assert.equal(ev('GET', { 'if-none-match': 'W/"xyzzy"' }, WEAK), 304);
  // no match: proceed
  assert.equal(ev('GET', { 'if-none-match': '"r2d2xxxx"' }), 'proceed');
  assert.equal(ev('PUT', { 'if-none-match': '"r2d2xxxx"' }), 'proceed');
  assert.equal(ev('GET', { 'if-none-match': '"xyzzy"' }, { lastModified: LM }), 'proceed');
  // opaque-tags are compared exactly: case matters
  assert.equal(ev('GET', { 'if-none-match': '"XYZZY"' }), 'proceed');
  // several field lines are one list
  assert.equal(ev('GET', { 'if-none-match': ['"a"', 'W/"xyzzy"'] }), 304);
  // malformed: GET gets the full response, other methods fail closed
  assert.equal(ev('GET', { 'if-none-match': 'xyzzy' }), 'proceed');
  assert.equal(ev('HEAD', { 'if-none-match': '"xyzzy' }), 'proceed');
  assert.equal(ev('PUT', { 'if-none-match': 'xyzzy' }), 412);
  assert.equal(ev('PUT', { 'if-none-match': '*, "a"' }), 412);
});

test('If-Modified-Since (§13.1.3): GET/HEAD only, without If-None-Match, valid date, Last-Modified known', () => {
  assert.equal(ev('GET', { 'if-modified-since': LM }), 304); // equal: not modified
  assert.equal(ev('HEAD', { 'if-modified-since': LATER }), 304);
  assert.equal(ev('GET', { 'if-modified-since': EARLIER }), 'proceed');
  // other methods: ignored
  assert.equal(ev('POST', { 'if-modified-since': LATER }), 'proceed');
  assert.equal(ev('PUT', { 'if-modified-since': LATER }), 'proceed');
  // invalid date, more than one member, no modification date: ignored
  assert.equal(ev('GET', { 'if-modified-since': 'not a date' }), 'proceed');
  assert.equal(ev('GET', { 'if-modified-since': '1994-10-29T19:43:31Z' }), 'proceed');
  assert.equal(ev('GET', { 'if-modified-since': `${LATER}, ${LATER}` }), 'proceed');
  assert.equal(ev('GET', { 'if-modified-since': [LATER, LATER] }), 'proceed');
  assert.equal(ev('GET', { 'if-modified-since': LATER }, { etag: '"xyzzy"' }), 'proceed');
  // the obsolete formats are dates too
  assert.equal(ev('GET', { 'if-modified-since': 'Saturday, 29-Oct-94 19:43:31 GMT' }), 304);
  assert.equal(ev('GET', { 'if-modified-since': 'Sat Oct 29 19:43:31 1994' }), 304);
  // RFC 9110 has no "later than the server's clock is invalid" rule (that was RFC 2616): a
  // future date is compared like any other.
  const future = new Date(Date.now() + 365 * 86400_000).toUTCString();
  assert.equal(ev('GET', { 'if-modified-since': future }, { lastModified: new Date().toUTCString() }), 304);
});

test('If-None-Match present: If-Modified-Since is ignored, whatever it says', () => {
  // If-None-Match does not match: proceed, although If-Modified-Since alone would be 304
  assert.equal(ev('GET', { 'if-none-match': '"other"', 'if-modified-since': LATER }), 'proceed');
  // If-None-Match matches: 304, although If-Modified-Since alone would be proceed
  assert.equal(ev('GET', { 'if-none-match': '"xyzzy"', 'if-modified-since': EARLIER }), 304);
  // a malformed If-None-Match is still present
  assert.equal(ev('GET', { 'if-none-match': 'bad', 'if-modified-since': LATER }), 'proceed');
});

test('§13.2.2 order: If-Match / If-Unmodified-Since before If-None-Match', () => {
  // step 1 fails first: 412, although If-None-Match would have said 304
  assert.equal(ev('GET', { 'if-match': '"other"', 'if-none-match': '"xyzzy"' }), 412);
  assert.equal(ev('GET', { 'if-unmodified-since': EARLIER, 'if-none-match': '"xyzzy"' }), 412);
  // steps 1 and 2 pass, step 3 decides
  assert.equal(ev('GET', { 'if-match': '"xyzzy"', 'if-none-match': '"xyzzy"' }), 304);
  assert.equal(ev('PUT', { 'if-unmodified-since': LM, 'if-none-match': '*' }), 412);
  assert.equal(ev('GET', { 'if-match': '*', 'if-modified-since': LM }), 304);
  // all four, all true
  assert.equal(
    ev('GET', {
      'if-match': '"xyzzy"',
      'if-unmodified-since': EARLIER,
      'if-none-match': '"other"',
      'if-modified-since': LM,
    }),
    'proceed',
  );
});

test('methods that select no representation ignore preconditions (§13.2.1); method names are case-sensitive', () => {
  for (const m of ['OPTIONS', 'CONNECT', 'TRACE']) {
    assert.equal(ev(m, { 'if-match': '"other"', 'if-none-match': '*' }), 'proceed', m);
  }
  // "get" is not GET (§9.1): a matching If-None-Match is a 412, If-Modified-Since is ignored
  assert.equal(ev('get', { 'if-none-match': '"xyzzy"' }), 412);
  assert.equal(ev('get', { 'if-modified-since': LATER }), 'proceed');
});

test('header names are found whatever their case', () => {
  assert.equal(ev('GET', { 'If-None-Match': '"xyzzy"' }), 304);
  assert.equal(ev('GET', { 'IF-MODIFIED-SINCE': LM }), 304);
  assert.equal(ev('PUT', { 'If-Match': '"nope"' }), 412);
  assert.equal(ev('GET', { 'if-none-match': undefined }), 'proceed');
});

// ---- entity tags, §8.8.3 ----------------------------------------------------------------------

test('parseEntityTags: the RFC examples, *, lists with empty elements', () => {
  assert.equal(parseEntityTags('*'), '*');
  assert.equal(parseEntityTags(' \t* '), '*');
  assert.deepEqual(parseEntityTags('"xyzzy"'), ['"xyzzy"']);
  assert.deepEqual(parseEntityTags('"xyzzy", "r2d2xxxx", "c3piozzzz"'), [
    '"xyzzy"',
    '"r2d2xxxx"',
    '"c3piozzzz"',
  ]);
  assert.deepEqual(parseEntityTags('W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz"'), [
    'W/"xyzzy"',
    'W/"r2d2xxxx"',
    'W/"c3piozzzz"',
  ]);
  // §8.8.3 ETag examples
  assert.deepEqual(parseEntityTags('"xyzzy"'), ['"xyzzy"']);
  assert.deepEqual(parseEntityTags('W/"xyzzy"'), ['W/"xyzzy"']);
  assert.deepEqual(parseEntityTags('""'), ['""']);
  // empty list elements (§5.6.1.2), OWS around commas
  assert.deepEqual(parseEntityTags('"a",,"b"'), ['"a"', '"b"']);
  assert.deepEqual(parseEntityTags(' , "a" ,\t"b" , '), ['"a"', '"b"']);
  assert.deepEqual(parseEntityTags(''), []);
  assert.deepEqual(parseEntityTags(', ,'), []);
  // a comma inside the quotes is part of the tag (etagc includes it)
  assert.deepEqual(parseEntityTags('"a,b", "c"'), ['"a,b"', '"c"']);
  // obs-text is allowed
  assert.deepEqual(parseEntityTags('"caf\u00e9"'), ['"caf\u00e9"']);
});

test('parseEntityTags: malformed values are null', () => {
  for (const bad of [
    'xyzzy', // unquoted
    '"abc', // unterminated
    'w/"a"', // weak indicator is case-sensitive
    'W/ "a"',
    'W/a',
    '"a" "b"', // no comma
    '"a"b',
    '*, "a"', // * with other values (§13.1.2)
    '**',
    '"a", *',
    '"a\x01"', // CTL
    '"a b"', // SP is not etagc
    '"a\\"b"', // no escaping in entity tags
    '"\u0100"', // not latin1
    '"a"\u0000',
  ]) {
    assert.equal(parseEntityTags(bad), null, JSON.stringify(bad));
  }
});

test('strong and weak comparison: the RFC §8.8.3.2 table', () => {
  const rows: [string, string, boolean, boolean][] = [
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
  ];
  for (const [a, b, strong, weak] of rows) {
    assert.equal(strongCompare(a, b), strong, `strong ${a} ${b}`);
    assert.equal(strongCompare(b, a), strong, `strong ${b} ${a}`);
    assert.equal(weakCompare(a, b), weak, `weak ${a} ${b}`);
    assert.equal(weakCompare(b, a), weak, `weak ${b} ${a}`);
  }
  assert.equal(strongCompare('"1"', '"2"'), false);
  assert.equal(strongCompare('"a"', '"A"'), false);
  // what is not one entity tag never matches, even itself
  assert.equal(strongCompare('1', '1'), false);
  assert.equal(weakCompare('1', '1'), false);
  assert.equal(weakCompare('"1", "2"', '"1", "2"'), false);
  assert.equal(weakCompare(' "1"', '"1"'), false);
});

// ---- If-Range, §13.1.5 ------------------------------------------------------------------------

test('ifRangeMatches with an entity tag: strong comparison', () => {
  assert.equal(ifRangeMatches('"xyzzy"', V), true);
  assert.equal(ifRangeMatches(' "xyzzy" ', V), true);
  assert.equal(ifRangeMatches('"other"', V), false);
  assert.equal(ifRangeMatches('W/"xyzzy"', V), false); // a weak tag never matches
  assert.equal(ifRangeMatches('"xyzzy"', WEAK), false);
  assert.equal(ifRangeMatches('"xyzzy"', { lastModified: LM }), false);
  assert.equal(ifRangeMatches('"xyzzy", "other"', V), false); // one tag, not a list
  assert.equal(ifRangeMatches('"xyzzy', V), false);
});

test('ifRangeMatches with a date: exactly Last-Modified, and Last-Modified strong (>= 1 s before Date)', () => {
  const date = 'Sat, 29 Oct 1994 19:43:32 GMT'; // one second after LM
  assert.equal(ifRangeMatches(LM, V, date), true);
  assert.equal(ifRangeMatches(LM, V, 'Sun, 06 Nov 1994 08:49:37 GMT'), true);
  // Date equal to Last-Modified: the representation may have changed twice in that second: weak
  assert.equal(ifRangeMatches(LM, V, LM), false);
  // not the same date
  assert.equal(ifRangeMatches(EARLIER, V, date), false);
  assert.equal(ifRangeMatches(LATER, V, date), false);
  // the same instant in an obsolete format
  assert.equal(ifRangeMatches('Saturday, 29-Oct-94 19:43:31 GMT', V, date), true);
  assert.equal(ifRangeMatches('Sat Oct 29 19:43:31 1994', V, date), true);
  // no Last-Modified, unparsable value, unparsable Date
  assert.equal(ifRangeMatches(LM, { etag: '"xyzzy"' }, date), false);
  assert.equal(ifRangeMatches('tomorrow', V, date), false);
  assert.equal(ifRangeMatches(LM, V, 'whenever'), false);
  // without a Date: the current time is the Date
  assert.equal(ifRangeMatches(LM, V), true);
  const justNow = new Date(Math.floor(Date.now() / 1000) * 1000 + 5000).toUTCString();
  assert.equal(ifRangeMatches(justNow, { lastModified: justNow }), false);
});

// ---- HTTP-date, §5.6.7 ------------------------------------------------------------------------

test('parseHttpDate: the RFC example in all three formats', () => {
  const t = Date.UTC(1994, 10, 6, 8, 49, 37);
  assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
  assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t);
  assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
  assert.equal(parseHttpDate('  Sun, 06 Nov 1994 08:49:37 GMT  '), t);
  assert.equal(parseHttpDate('Sun Nov 16 08:49:37 1994'), Date.UTC(1994, 10, 16, 8, 49, 37));
  assert.equal(parseHttpDate(LM), Date.UTC(1994, 9, 29, 19, 43, 31));
});

test('parseHttpDate: calendar and clock limits', () => {
  assert.equal(parseHttpDate('Thu, 29 Feb 2024 00:00:00 GMT'), Date.UTC(2024, 1, 29));
  assert.equal(parseHttpDate('Tue, 29 Feb 2000 00:00:00 GMT'), Date.UTC(2000, 1, 29));
  assert.equal(parseHttpDate('Wed, 29 Feb 2023 00:00:00 GMT'), undefined);
  assert.equal(parseHttpDate('Thu, 29 Feb 1900 00:00:00 GMT'), undefined);
  assert.equal(parseHttpDate('Fri, 31 Dec 1999 23:59:59 GMT'), Date.UTC(1999, 11, 31, 23, 59, 59));
  assert.equal(parseHttpDate('Thu, 31 Apr 2025 00:00:00 GMT'), undefined);
  assert.equal(parseHttpDate('Sun, 00 Nov 1994 08:49:37 GMT'), undefined);
  assert.equal(parseHttpDate('Sun, 06 Nov 1994 24:00:00 GMT'), undefined);
  assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:60:00 GMT'), undefined);
  // a leap second is a valid time-of-day; it is the next second's instant
  assert.equal(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT'), Date.UTC(2017, 0, 1));
  assert.equal(parseHttpDate('Sat, 31 Dec 2016 23:59:61 GMT'), undefined);
  // years below 100 are years below 100, not 19xx
  assert.equal(parseHttpDate('Mon, 01 Jan 0001 00:00:00 GMT'), -62135596800000);
  // the weekday is checked for spelling only
  assert.equal(parseHttpDate('Mon, 06 Nov 1994 08:49:37 GMT'), Date.UTC(1994, 10, 6, 8, 49, 37));
});

test('parseHttpDate: anything else is undefined', () => {
  for (const bad of [
    '',
    'garbage',
    'sun, 06 Nov 1994 08:49:37 GMT', // names are case-sensitive
    'Sun, 06 nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 gmt',
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'Sun, 06 Nov 1994 08:49:37 +0000',
    'Sun, 06 Nov 1994 08:49:37',
    'Sun, 6 Nov 1994 08:49:37 GMT', // 2DIGIT day
    'Sun, 06 Nov 94 08:49:37 GMT', // 4DIGIT year
    'Sun,  06 Nov 1994 08:49:37 GMT',
    'Sun 06 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 8:49:37 GMT',
    'Sunday, 06 Nov 1994 08:49:37 GMT', // long day name in IMF
    'Sun, 06-Nov-94 08:49:37 GMT', // short day name in RFC 850
    'Sunday, 06-Nov-1994 08:49:37 GMT',
    'Sun Nov 6 08:49:37 1994', // asctime pads with a space
    'Sun Nov 06 08:49:37 1994 GMT',
    '1994-11-06T08:49:37Z', // Date.parse would take these
    '784111777',
    'Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 GMT\n',
    'Sun, 06 Nov 1994 08:49:37 GMT x',
  ]) {
    assert.equal(parseHttpDate(bad), undefined, JSON.stringify(bad));
  }
});

test('parseHttpDate: an RFC 850 year more than 50 years ahead is in the past century', () => {
  const year = new Date().getUTCFullYear();
  const yy = (y: number) => String(y % 100).padStart(2, '0');
  const at = (y: number) => parseHttpDate(`Monday, 01-Jan-${yy(y)} 00:00:00 GMT`);
  assert.equal(at(year + 10), Date.UTC(year + 10, 0, 1));
  assert.equal(at(year + 49), Date.UTC(year + 49, 0, 1));
  assert.equal(at(year + 60), Date.UTC(year + 60 - 100, 0, 1));
  assert.equal(at(year - 1), Date.UTC(year - 1, 0, 1));
  assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), Date.UTC(1994, 10, 6, 8, 49, 37));
});
