// htpasswd parsing (what is accepted and what is refused, with its line), the dummy hash an unknown
// user is checked against, and the password thread (auth/passwords.ts): right, wrong, and busy.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { dummyHash, fromText, htpasswdProblems, parseHtpasswd } from '../../src/auth/htpasswd.ts';
import { checkPassword } from '../../src/auth/passwordCheck.ts';
import { MAX_PENDING, PasswordsBusy, pendingChecks, verifyPassword } from '../../src/auth/passwords.ts';
import { shaCrypt } from '../../src/auth/shaCrypt.ts';
import { tempDir } from '../helpers/certs.ts';

const BCRYPT = bcrypt.hashSync('pw', 4);
const SHA256 = shaCrypt('pw', '$5$abcdefgh');
const SHA512 = shaCrypt('pw', '$6$rounds=2000$abcdefgh');

test('accepted: bcrypt, SHA-256-crypt, SHA-512-crypt; comments, blank lines, CRLF and a BOM are fine', () => {
  const text = `\ufeff# staff\r\nalice:${BCRYPT}\r\n\r\n  # indented comment\nbob:${SHA256}\ncarol:${SHA512.replace('$6$', '$6$')}\nd\u00e9sir\u00e9e:${BCRYPT.replace('$2b$', '$2y$')}\n`;
  const { users, problems } = parseHtpasswd(text);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    [...users].map(([u, e]) => [u, e.scheme, e.cost, e.line]),
    [
      ['alice', 'bcrypt', 4, 2],
      ['bob', 'sha256-crypt', 5000, 5],
      ['carol', 'sha512-crypt', 2000, 6],
      ['désirée', 'bcrypt', 4, 7],
    ],
  );
});

test('refused, each with its line and user, never its hash: plain, {SHA}, DES, MD5-crypt, unknown, malformed', () => {
  const lines = [
    `ok:${BCRYPT}`,
    'plain:hunter2',
    'sha1:{SHA}fn9NO4gmm8p+/qaTnTWuU3Ao+GQ=',
    'des:HiwvRvgIS6g32',
    'apr:$apr1$zjubCGBo$HDhVboSgfIkQs7EOaOdLH/',
    'md5:$1$saltsalt$8kuTlqdlJrPqRdX9GvBYx.',
    'yes:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7',
    'bad2:$2y$05$short',
    'bad6:$6$salt$tooshort',
    'cost:$2y$99$' + 'a'.repeat(53),
    'no colon here',
    `:${BCRYPT}`,
    `ok:${SHA256}`,
    `tab\there:${BCRYPT}`,
    `x:y:${BCRYPT}`,
  ];
  const { users, problems } = parseHtpasswd(lines.join('\n'));
  assert.equal(users.size, 0, 'a file with problems gives no users');
  const byLine = new Map(problems.map((p) => [p.line, p.message]));
  assert.match(byLine.get(2) ?? '', /^"plain": a plain-text password/);
  assert.match(byLine.get(3) ?? '', /^"sha1": \{SHA\} \(unsalted SHA-1/);
  assert.match(byLine.get(4) ?? '', /^"des": crypt\(3\) DES/);
  assert.match(byLine.get(5) ?? '', /^"apr": MD5-crypt \(\$apr1\$, htpasswd -m\) is refused/);
  assert.match(byLine.get(6) ?? '', /^"md5": MD5-crypt \(\$1\$/);
  assert.match(byLine.get(7) ?? '', /^"yes": unsupported hash \(\$y\$\)/);
  assert.match(byLine.get(8) ?? '', /malformed bcrypt/);
  assert.match(byLine.get(9) ?? '', /malformed SHA-512-crypt/);
  assert.match(byLine.get(10) ?? '', /cost 99 is outside/);
  assert.match(byLine.get(11) ?? '', /expected user:hash/);
  assert.match(byLine.get(12) ?? '', /user name is empty/);
  assert.match(byLine.get(13) ?? '', /"ok" is already on line 1/);
  assert.match(byLine.get(14) ?? '', /control character/);
  // A user name cannot hold ':' (RFC 7617): "x" with the hash "y:$2b$..." is malformed.
  assert.match(byLine.get(15) ?? '', /^"x": a plain-text password/);
  assert.equal(problems.length, 14);
  const all = problems.map((p) => p.message).join('\n');
  for (const secret of ['hunter2', 'fn9NO4gmm8p', 'HiwvRvgIS6g32', 'zjubCGBo', '8kuTlqdlJrPqRdX9'])
    assert.ok(!all.includes(secret), `the message shows ${secret}`);
});

test('an empty file has no users; problems come as path:line', () => {
  assert.deepEqual(parseHtpasswd('# nobody\n\n').problems, [{ line: 1, message: 'the file holds no users' }]);
  const dir = tempDir();
  const file = join(dir, 'users');
  writeFileSync(file, `a:${BCRYPT}\nb:plain\n`);
  assert.deepEqual(htpasswdProblems(file), [
    `${file}:2: "b": a plain-text password (or an unknown hash) is refused; make it with htpasswd -B (bcrypt) or -5 (SHA-512-crypt)`,
  ]);
  assert.throws(() => fromText('b:plain\n', file), new RegExp(`^Error: ${file}:1: "b"`));
  assert.match(htpasswdProblems(join(dir, 'nope'))[0], /cannot read .*\(ENOENT\)/);
  assert.match(htpasswdProblems(dir)[0], /is not a file/);
});

test('the dummy hash has the most common kind and cost of the file, and matches nothing', () => {
  const b10 = `$2y$10$${'a'.repeat(53)}`;
  const parse = (...hashes: string[]) => parseHtpasswd(hashes.map((h, i) => `u${i}:${h}`).join('\n')).users;
  const d1 = dummyHash(parse(BCRYPT, BCRYPT, b10));
  assert.match(d1, /^\$2b\$04\$[./A-Za-z0-9]{53}$/);
  const d2 = dummyHash(parse(SHA512, SHA512, BCRYPT));
  assert.match(d2, /^\$6\$rounds=2000\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}$/);
  assert.match(dummyHash(parse(SHA256)), /^\$5\$rounds=5000\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{43}$/);
  // Ties go to the costlier.
  assert.match(dummyHash(parse(BCRYPT, b10)), /^\$2b\$10\$/);
  // Well-formed, so the check runs in full; no password matches it.
  assert.equal(parseHtpasswd(`x:${d1}\ny:${d2}`).problems.length, 0);
  for (const pw of ['', 'pw', 'password']) {
    assert.equal(checkPassword(pw, d1), false);
    assert.equal(checkPassword(pw, d2), false);
  }
  assert.notEqual(dummyHash(parse(BCRYPT)), dummyHash(parse(BCRYPT)), 'random each time');
});

test('the password thread: right and wrong answers, and PasswordsBusy past MAX_PENDING', async () => {
  assert.equal(await verifyPassword('pw', BCRYPT), true);
  assert.equal(await verifyPassword('pW', BCRYPT), false);
  assert.equal(await verifyPassword('pw', SHA512), true);
  assert.equal(await verifyPassword('pw', 'garbage'), false);
  const slow = bcrypt.hashSync('pw', 4);
  const all = Array.from({ length: MAX_PENDING + 20 }, () =>
    verifyPassword('pw', slow).then(
      (ok) => (ok ? 'ok' : 'no'),
      (err) => (err instanceof PasswordsBusy ? 'busy' : `error ${err}`),
    ),
  );
  const results = await Promise.all(all);
  assert.equal(results.filter((r) => r === 'ok').length, MAX_PENDING);
  assert.equal(results.filter((r) => r === 'busy').length, 20);
  assert.equal(pendingChecks(), 0);
  assert.equal(await verifyPassword('pw', slow), true, 'usable again once drained');
});
