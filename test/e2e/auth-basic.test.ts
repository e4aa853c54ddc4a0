// basicAuth end to end, on every transport (HTTP/1.1 plain and TLS, HTTP/2 over TLS, h2c, WebSocket
// upgrades plain and TLS), against htpasswd files made by Apache's htpasswd tool (apache2-utils) or
// by the test with the same algorithms (bcryptjs, `openssl passwd -5/-6`), as an attacker would try
// it: no credential, a wrong password, an unknown user, malformed base64, a user name with ':',
// two Authorization fields, a forged user header. Plus the cache, the file's reload and validation.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { passwordStats } from '../../src/auth/passwords.ts';
import { validateText } from '../../src/config/validate.ts';
import { ALL, echoed, header, skipWithoutOpenssl, UPGRADES, world, wsEcho } from '../auth/world.ts';
import { rawH1 } from '../helpers/attack.ts';
import { tempDir } from '../helpers/certs.ts';
import { until } from '../helpers/gatehouse.ts';
import { rawH2 } from '../helpers/h2raw.ts';
import { needCommand } from '../helpers/require.ts';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
const CHALLENGE = 'Basic realm="Staff area", charset="UTF-8"';

/** An htpasswd file made by the test: bcrypt (bcryptjs, cost 5) and SHA-256/512-crypt (openssl passwd). */
function testFile(dir: string, users: Record<string, string>, name = 'users.htpasswd'): string {
  const lines = Object.entries(users).map(([user, pw], i) => {
    const kind = i % 3;
    const hash =
      kind === 0
        ? bcrypt.hashSync(pw, 5)
        : execFileSync('openssl', ['passwd', kind === 1 ? '-5' : '-6', pw], { encoding: 'utf8' }).trim();
    return `${user}:${hash}`;
  });
  const file = join(dir, name);
  writeFileSync(file, `# made by the test\n${lines.join('\n')}\n`);
  return file;
}

const mw = (file: string, extra = '') =>
  `  staff: { basicAuth: { realm: "Staff area", usersFile: ${file}, headerUser: x-user${extra} } }`;

test('users made by htpasswd -B, -2 and -5 get in on every transport; the user goes upstream, a forged one never', {
  skip: skipWithoutOpenssl,
}, async (t) => {
  if (
    !needCommand(t, 'htpasswd', 'basicAuth is tested against files made by Apache’s htpasswd (apache2-utils)')
  )
    return;
  const dir = tempDir();
  const file = join(dir, 'tool.htpasswd');
  execFileSync('htpasswd', ['-cbB', '-C', '5', file, 'alice', 'wonder land']);
  execFileSync('htpasswd', ['-b2', file, 'bob', 'b0b-pässword']);
  execFileSync('htpasswd', ['-b5', file, 'carol', 'c:a:r:o:l']);
  const w = await world(mw(file), 'staff');
  try {
    for (const tr of ALL) {
      for (const [user, pw] of [
        ['alice', 'wonder land'],
        ['bob', 'b0b-pässword'],
        ['carol', 'c:a:r:o:l'],
      ]) {
        const a = await w.ask(tr, {
          target: '/app?x=1',
          headers: [
            ['authorization', basic(user, pw)],
            ['x-user', 'root'],
          ],
        });
        assert.equal(a.status, 200, `${tr} ${user}: ${a.raw.slice(0, 200)}`);
        const seen = echoed(a).headers;
        assert.equal(seen['x-user'], user, `${tr}: the upstream gets the user, not the forged one`);
        // Forwarded as nginx and Traefik do by default: the application may read it.
        assert.equal(seen.authorization, basic(user, pw));
      }
    }
    const last = w.up.seen.at(-1);
    assert.equal(last?.rawHeaders.filter((h) => h.toLowerCase() === 'x-user').length, 1, 'one x-user field');
  } finally {
    await w.close();
  }
});

test('no credential, a wrong password and an unknown user get the same 401 and the same kind of check', {
  skip: skipWithoutOpenssl,
}, async () => {
  const dir = tempDir();
  const file = testFile(dir, { alice: 'right' });
  const w = await world(mw(file), 'staff');
  try {
    for (const tr of ALL) {
      const none = await w.ask(tr, { target: '/' });
      assert.equal(none.status, 401, `${tr}: no credential`);
      assert.equal(header(none, 'www-authenticate'), CHALLENGE, tr);
      assert.match(none.body, /unauthorized/);
      const before = passwordStats.checks;
      const wrong = await w.ask(tr, { target: '/', headers: [['authorization', basic('alice', 'wrong')]] });
      const unknown = await w.ask(tr, {
        target: '/',
        headers: [['authorization', basic('mallory', 'right')]],
      });
      // The unknown user's password is checked against a dummy hash: both cost one check.
      assert.equal(passwordStats.checks - before, 2, `${tr}: one password check each`);
      for (const a of [wrong, unknown]) {
        assert.equal(a.status, 401, tr);
        assert.equal(header(a, 'www-authenticate'), CHALLENGE);
      }
      const strip = (s: string) => s.replace(/[0-9a-f-]{20,}/g, 'ID');
      assert.equal(strip(wrong.body), strip(unknown.body), `${tr}: the bodies say the same`);
      assert.deepEqual(
        Object.keys(wrong.headers).filter((k) => k !== 'date'),
        Object.keys(unknown.headers).filter((k) => k !== 'date'),
      );
    }
    assert.equal(w.up.seen.length, 0, 'nothing reached the upstream');
  } finally {
    await w.close();
  }
});

test('malformed credentials are refused: bad base64, no colon, a colon in the user name, control characters, two fields', {
  skip: skipWithoutOpenssl,
}, async () => {
  const dir = tempDir();
  const file = testFile(dir, { al: 'ice:pw', bob: 'pw' });
  const w = await world(mw(file), 'staff');
  try {
    const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');
    const bad: [string, string][][] = [
      [['authorization', 'Basic !!!not-base64!!!']],
      [['authorization', 'Basic YWxpY2U6c2VjcmV0=x']],
      [['authorization', `Basic ${b64('bobpw')}`]],
      [['authorization', `Basic ${b64('bob:pw').replace(/=+$/, '')}===`]],
      [['authorization', basic('bob', 'pw').replace('Basic', 'Digest')]],
      // RFC 7617: the user-id ends at the first colon, so "al:ice" + "pw" is user "al" with "ice:pw"
      // (below) and user "bob:x" does not exist.
      [['authorization', basic('bob:x', 'pw')]],
      [['authorization', `Basic ${b64('bob:p\u0000w')}`]],
      [['authorization', `Basic ${b64('bob:\xff\xfe')}`]],
      [['authorization', 'Basic']],
      [['authorization', 'Bearer abc.def.ghi']],
      [
        ['authorization', basic('bob', 'wrong')],
        ['authorization', basic('bob', 'pw')],
      ],
      [
        ['authorization', basic('bob', 'pw')],
        ['authorization', basic('bob', 'wrong')],
      ],
    ];
    for (const tr of ALL) {
      for (const headers of bad) {
        if ((tr === 'h2' || tr === 'h2c') && headers.length > 1) {
          // node:http2's client sends one Authorization field at most: these go as raw frames.
          const seen = w.up.seen.length;
          const fields: [string, string][] = [
            [':method', 'GET'],
            [':scheme', tr === 'h2' ? 'https' : 'http'],
            [':authority', 'gh.test'],
            [':path', '/'],
            ...headers,
          ];
          const r = await rawH2(tr === 'h2' ? w.L.tls : w.L.h2c, fields, {
            tls: tr === 'h2' ? { ca: w.L.ca, servername: 'gh.test' } : undefined,
          });
          assert.equal(r.kind, 'headers', `${tr}: answered`);
          assert.notEqual(r.status, 200, tr);
          assert.equal(w.up.seen.length, seen, `${tr}: two Authorization fields do not get through`);
          continue;
        }
        const a = await w.ask(tr, { target: '/', headers });
        assert.equal(a.status, 401, `${tr} ${JSON.stringify(headers)}`);
        assert.equal(header(a, 'www-authenticate'), CHALLENGE);
      }
      const ok = await w.ask(tr, { target: '/', headers: [['authorization', basic('al', 'ice:pw')]] });
      assert.equal(ok.status, 200, `${tr}: user al, password ice:pw`);
      const scheme = await w.ask(tr, {
        target: '/',
        headers: [['authorization', basic('bob', 'pw').replace('Basic', 'bAsIc')]],
      });
      assert.equal(scheme.status, 200, `${tr}: the scheme is case-insensitive`);
    }
    assert.ok(w.up.seen.every((s) => s.headers.authorization !== basic('bob', 'wrong')));
  } finally {
    await w.close();
  }
});

test('a WebSocket upgrade without credentials is refused; with them it opens', {
  skip: skipWithoutOpenssl,
}, async () => {
  const dir = tempDir();
  const file = testFile(dir, { alice: 'pw' });
  const w = await world(mw(file), 'staff');
  try {
    for (const tls of [false, true]) {
      const ca = tls ? w.L.ca : undefined;
      assert.equal(await wsEcho(`${w.wsUrl(tls)}/ws`, {}, ca), 'status:401');
      assert.equal(
        await wsEcho(`${w.wsUrl(tls)}/ws`, { authorization: basic('alice', 'nope') }, ca),
        'status:401',
      );
      assert.equal(
        await wsEcho(`${w.wsUrl(tls)}/ws`, { authorization: basic('alice', 'pw'), 'x-user': 'root' }, ca),
        'echo:hello',
      );
    }
    assert.equal(w.upgrades.length, 2);
    for (const u of w.upgrades) assert.equal(u['x-user'], 'alice');
    for (const tr of UPGRADES) {
      const a = await w.ask(tr, { target: '/ws' });
      assert.equal(a.status, 401, tr);
      assert.match(a.raw, /\r\nconnection: close\r\n/i);
    }
  } finally {
    await w.close();
  }
});

test('a verified credential is remembered: one password check per cacheTtl, shared by requests in flight', {
  skip: skipWithoutOpenssl,
}, async () => {
  const dir = tempDir();
  const file = testFile(dir, { alice: 'pw', bob: 'pw2' });
  const w = await world(mw(file, ', cacheTtl: 1m'), 'staff');
  try {
    const before = passwordStats.checks;
    const auth: [string, string][] = [['authorization', basic('alice', 'pw')]];
    const first = await Promise.all(
      Array.from({ length: 10 }, () => w.ask('h1', { target: '/', headers: auth })),
    );
    assert.ok(first.every((a) => a.status === 200));
    assert.equal(passwordStats.checks - before, 1, 'ten concurrent requests, one check');
    for (const tr of ALL) assert.equal((await w.ask(tr, { target: '/', headers: auth })).status, 200);
    assert.equal(passwordStats.checks - before, 1, 'later requests are answered from the cache');
    // A wrong password is never remembered as right, and costs a check every time.
    for (let i = 0; i < 3; i++)
      assert.equal(
        (await w.ask('h1', { target: '/', headers: [['authorization', basic('alice', 'PW')]] })).status,
        401,
      );
    assert.equal(passwordStats.checks - before, 4);
  } finally {
    await w.close();
  }
  // cacheTtl: 0 checks every time.
  const w0 = await world(mw(file, ', cacheTtl: 0s'), 'staff');
  try {
    const before = passwordStats.checks;
    for (let i = 0; i < 3; i++)
      assert.equal(
        (await w0.ask('h1', { target: '/', headers: [['authorization', basic('bob', 'pw2')]] })).status,
        200,
      );
    assert.equal(passwordStats.checks - before, 3);
  } finally {
    await w0.close();
  }
});

test('the file is reloaded when it changes; a bad or missing file keeps the users loaded', {
  skip: skipWithoutOpenssl,
}, async () => {
  const dir = tempDir();
  const file = testFile(dir, { alice: 'old' });
  const w = await world(mw(file), 'staff');
  const said: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (String(chunk).includes('basicAuth.usersFile')) said.push(String(chunk));
    else return write(chunk, ...rest);
    return true;
  }) as typeof process.stderr.write;
  const status = async (user: string, pw: string) =>
    (await w.ask('h1', { target: '/', headers: [['authorization', basic(user, pw)]] })).status;
  try {
    assert.equal(await status('alice', 'old'), 200);
    // Replaced atomically (a new file renamed over the old one), with a new password and a new user.
    testFile(dir, { alice: 'new', bob: 'pw' }, 'next.htpasswd');
    renameSync(join(dir, 'next.htpasswd'), file);
    await waitFor(async () => (await status('alice', 'new')) === 200, 'the new file');
    assert.equal(await status('alice', 'old'), 401, 'the remembered old password is forgotten');
    assert.equal(await status('bob', 'pw'), 200);
    // An invalid file (an MD5-crypt line) is refused: the users stay.
    writeFileSync(file, 'alice:$apr1$zjubCGBo$HDhVboSgfIkQs7EOaOdLH/\n');
    await until(() => said.length > 0, 8000, 'the refusal reported');
    assert.match(said[0], /:1: "alice": MD5-crypt .* refused.*keeping the users loaded before/);
    assert.doesNotMatch(said[0], /zjubCGBo/, 'the hash is not shown');
    assert.equal(await status('alice', 'new'), 200);
    // Gone: the users stay too.
    rmSync(file);
    await until(() => said.length > 1, 8000, 'the missing file reported');
    assert.match(said[1], /is gone/);
    assert.equal(await status('bob', 'pw'), 200);
    // Back, good: loaded.
    testFile(dir, { carol: 'pw3' });
    await waitFor(async () => (await status('carol', 'pw3')) === 200, 'the restored file');
    assert.equal(await status('bob', 'pw'), 401);
  } finally {
    process.stderr.write = write;
    await w.close();
  }
});

async function waitFor(cond: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('validation refuses plain, {SHA}, DES and MD5-crypt lines with file:line, and a missing file', (t) => {
  if (!needCommand(t, 'htpasswd', 'the refused hashes are made with Apache’s htpasswd (apache2-utils)'))
    return;
  const dir = tempDir();
  const file = join(dir, 'weak.htpasswd');
  execFileSync('htpasswd', ['-cbB', '-C', '4', file, 'ok', 'pw']);
  execFileSync('htpasswd', ['-bp', file, 'plain', 'pw'], { stdio: 'ignore' });
  execFileSync('htpasswd', ['-bs', file, 'sha1', 'pw']);
  execFileSync('htpasswd', ['-bd', file, 'des', 'pw']);
  execFileSync('htpasswd', ['-bm', file, 'md5', 'pw']);
  const yaml = (f: string) => `
listeners: [{ name: web, address: 127.0.0.1:0 }]
middlewares:
  staff: { basicAuth: { usersFile: ${f} } }
routes: [{ name: r, middlewares: [staff], upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`;
  const v = validateText(yaml(file), 'gh.yaml');
  const reasons = v.errors.map((e) => `${e.key}: ${e.reason}`);
  assert.equal(reasons.length, 4, reasons.join('\n'));
  assert.ok(reasons.every((r) => r.startsWith('middlewares.staff.basicAuth.usersFile: ')));
  assert.match(reasons[0], new RegExp(`${file}:2: "plain": a plain-text password`));
  assert.match(reasons[1], new RegExp(`${file}:3: "sha1": \\{SHA\\}`));
  assert.match(reasons[2], new RegExp(`${file}:4: "des": crypt\\(3\\) DES`));
  assert.match(reasons[3], new RegExp(`${file}:5: "md5": MD5-crypt`));
  assert.doesNotMatch(reasons.join('\n'), /\$apr1\$\w|pw\b/, 'no hash or password shown');
  const missing = validateText(yaml(join(dir, 'nope')), 'gh.yaml');
  assert.match(missing.errors.map((e) => e.reason).join('\n'), /cannot read .*nope \(ENOENT\)/);
  execFileSync('htpasswd', ['-D', file, 'plain']);
  execFileSync('htpasswd', ['-D', file, 'sha1']);
  execFileSync('htpasswd', ['-D', file, 'des']);
  execFileSync('htpasswd', ['-D', file, 'md5']);
  assert.deepEqual(validateText(yaml(file), 'gh.yaml').errors, []);
});

test('HTTP/1.1 on the raw path: a HEAD is refused without a body; a refusal keeps the connection for the next request', {
  skip: skipWithoutOpenssl,
}, async () => {
  const dir = tempDir();
  const file = testFile(dir, { alice: 'pw' });
  const w = await world(mw(file), 'staff');
  try {
    const head = await w.ask('h1', { method: 'HEAD', target: '/' });
    assert.equal(head.status, 401);
    assert.equal(head.body, '');
    const r = await rawH1(
      w.L.plain,
      'GET /first HTTP/1.1\r\nHost: gh.test\r\n\r\n' +
        `GET /second HTTP/1.1\r\nHost: gh.test\r\nAuthorization: ${basic('alice', 'pw')}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(r.raw, /^HTTP\/1\.1 401 /);
    assert.match(
      r.raw,
      /HTTP\/1\.1 200 OK[\s\S]*"url":"\/second"/,
      'the next request on the connection is served',
    );
  } finally {
    await w.close();
  }
});
