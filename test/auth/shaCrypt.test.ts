// SHA-256-crypt and SHA-512-crypt against the test vectors of the specification ("Unix crypt using
// SHA-256 and SHA-512", Ulrich Drepper) and against what `openssl passwd -5/-6` and Apache's
// `htpasswd -2/-5` make here; checkPassword for every accepted scheme.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { checkPassword } from '../../src/auth/passwordCheck.ts';
import { parseShaCryptSetting, shaCrypt } from '../../src/auth/shaCrypt.ts';
import { needCommand } from '../helpers/require.ts';

// [setting, password, expected] — the specification's vectors.
const SHA256: [string, string, string][] = [
  ['$5$saltstring', 'Hello world!', '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'],
  [
    '$5$rounds=10000$saltstringsaltstring',
    'Hello world!',
    '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA',
  ],
  [
    '$5$rounds=5000$toolongsaltstring',
    'This is just a test',
    '$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5',
  ],
  [
    '$5$rounds=1400$anotherlongsaltstring',
    'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    '$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1',
  ],
  [
    '$5$rounds=77777$short',
    'we have a short salt string but not a short password',
    '$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/',
  ],
  [
    '$5$rounds=123456$asaltof16chars..',
    'a short string',
    '$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD',
  ],
  [
    '$5$rounds=10$roundstoolow',
    'the minimum number is still observed',
    '$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC',
  ],
];
const SHA512: [string, string, string][] = [
  [
    '$6$saltstring',
    'Hello world!',
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
  ],
  [
    '$6$rounds=10000$saltstringsaltstring',
    'Hello world!',
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  [
    '$6$rounds=5000$toolongsaltstring',
    'This is just a test',
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
  ],
  [
    '$6$rounds=1400$anotherlongsaltstring',
    'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
  ],
  [
    '$6$rounds=77777$short',
    'we have a short salt string but not a short password',
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
  ],
  [
    '$6$rounds=123456$asaltof16chars..',
    'a short string',
    '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1',
  ],
  [
    '$6$rounds=10$roundstoolow',
    'the minimum number is still observed',
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
  ],
];

test('SHA-256-crypt: the specification’s vectors', () => {
  for (const [setting, password, expected] of SHA256) {
    assert.equal(shaCrypt(password, setting), expected, setting);
    // Checking against the stored hash recomputes the same string (the cheaper vectors only).
    if (parseShaCryptSetting(setting)?.rounds === 1000 || setting === '$5$saltstring') {
      assert.equal(checkPassword(password, expected), true);
      assert.equal(checkPassword(`${password}x`, expected), false);
    }
  }
});

test('SHA-512-crypt: the specification’s vectors', () => {
  for (const [setting, password, expected] of SHA512) {
    assert.equal(shaCrypt(password, setting), expected, setting);
    if (parseShaCryptSetting(setting)?.rounds === 1000 || setting === '$6$saltstring') {
      assert.equal(checkPassword(password, expected), true);
      assert.equal(checkPassword(password.slice(1), expected), false);
    }
  }
});

test('settings: rounds clamped to 1000 … 999999999, a custom rounds kept, the salt cut at 16', () => {
  assert.deepEqual(parseShaCryptSetting('$6$rounds=10$abc$xyz'), {
    id: 6,
    rounds: 1000,
    customRounds: true,
    salt: 'abc',
  });
  assert.deepEqual(parseShaCryptSetting('$5$rounds=5000$saltstring'), {
    id: 5,
    rounds: 5000,
    customRounds: true,
    salt: 'saltstring',
  });
  assert.equal(parseShaCryptSetting('$5$12345678901234567890')?.salt, '1234567890123456');
  assert.equal(parseShaCryptSetting('$6$rounds=9999999999$x')?.rounds, 999_999_999);
  assert.equal(parseShaCryptSetting('$1$abc$def'), undefined);
  assert.throws(() => shaCrypt('x', '$apr1$abc$'), /not a SHA-crypt setting/);
});

test('hashes made by openssl passwd -5 and -6 (random salts, UTF-8 and long passwords)', (t) => {
  if (!needCommand(t, 'openssl', 'the SHA-crypt hashes are checked against openssl passwd')) return;
  const passwords = [
    'secret',
    'correct horse battery staple',
    'pässwörd ✓',
    'x'.repeat(200),
    ':colon:in:it',
    ' ',
  ];
  for (const flag of ['-5', '-6']) {
    for (const pw of passwords) {
      const hash = execFileSync('openssl', ['passwd', flag, '-stdin'], {
        input: `${pw}\n`,
        encoding: 'utf8',
      }).trim();
      assert.match(hash, flag === '-5' ? /^\$5\$/ : /^\$6\$/);
      assert.equal(shaCrypt(pw, hash), hash, `${flag} ${JSON.stringify(pw)}`);
      assert.equal(checkPassword(pw, hash), true);
      assert.equal(checkPassword(`${pw}!`, hash), false);
    }
    // A chosen salt, as the specification's examples do.
    const salted = execFileSync('openssl', ['passwd', flag, '-salt', 'saltstring', 'Hello world!'], {
      encoding: 'utf8',
    }).trim();
    assert.equal(salted, (flag === '-5' ? SHA256 : SHA512)[0][2]);
  }
});

test('hashes made by htpasswd -2 and -5 (with -r rounds) and -B', (t) => {
  if (!needCommand(t, 'htpasswd', 'the hashes are checked against Apache’s htpasswd (apache2-utils)')) return;
  const make = (args: string[], pw: string) =>
    execFileSync('htpasswd', ['-nb', ...args, 'u', pw], { encoding: 'utf8' })
      .trim()
      .slice(2);
  for (const [args, re] of [
    [['-2'], /^\$5\$/],
    [['-5'], /^\$6\$/],
    [['-2', '-r', '12000'], /^\$5\$rounds=12000\$/],
    [['-5', '-r', '1000'], /^\$6\$rounds=1000\$/],
    [['-B', '-C', '4'], /^\$2y\$04\$/],
  ] as [string[], RegExp][]) {
    const hash = make(args, 'p@ss wörd');
    assert.match(hash, re);
    assert.equal(checkPassword('p@ss wörd', hash), true, args.join(' '));
    assert.equal(checkPassword('p@ss word', hash), false, args.join(' '));
  }
});

test('bcrypt: $2y$, $2b$ and $2a$ hashes; anything else is never a match', () => {
  const b = bcrypt.hashSync('secret', 4);
  for (const prefix of ['$2y$', '$2b$', '$2a$']) {
    const h = prefix + b.slice(4);
    assert.equal(checkPassword('secret', h), true, prefix);
    assert.equal(checkPassword('Secret', h), false, prefix);
  }
  assert.equal(checkPassword('secret', 'secret'), false, 'plain text never matches');
  assert.equal(checkPassword('x', '$apr1$zjubCGBo$HDhVboSgfIkQs7EOaOdLH/'), false);
});
