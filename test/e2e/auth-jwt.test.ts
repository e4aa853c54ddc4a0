// jwt end to end, on every transport (HTTP/1.1 plain and TLS, HTTP/2 over TLS, h2c, WebSocket
// upgrades plain and TLS), with a real JWKS endpoint that rotates its keys and counts its requests,
// and tokens an attacker would send: alg none, HS256 signed with the RSA public key as the secret,
// expired or not yet valid beyond the clock skew, a wrong issuer or audience, a tampered payload, a
// made-up kid (a flood of them must not make one JWKS fetch each), forged claim headers.
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { validateText } from '../../src/config/validate.ts';
import { jwtStats } from '../../src/middleware/jwt.ts';
import { ALL, echoed, header, skipWithoutOpenssl, UPGRADES, world, wsEcho } from '../auth/world.ts';
import { tempDir } from '../helpers/certs.ts';
import { until } from '../helpers/gatehouse.ts';
import { rawH2 } from '../helpers/h2raw.ts';

const ISS = 'https://issuer.test';
const AUD = 'gatehouse-tests';

interface Key {
  kid: string;
  alg: string;
  privateKey: webcrypto.CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

async function makeKey(kid: string, alg = 'RS256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
    publicPem: await exportSPKI(publicKey),
  };
}

/** A real JWKS endpoint: serves `keys`, counts requests. */
async function jwksServer(
  keys: Key[],
  port = 0,
): Promise<{ url: string; keys: Key[]; hits: number; server: Server; close(): Promise<void> }> {
  const state = {
    keys,
    hits: 0,
    url: '',
    server: createServer((_req, res) => {
      state.hits++;
      const body = JSON.stringify({ keys: state.keys.map((k) => k.publicJwk) });
      res.writeHead(200, {
        'content-type': 'application/jwk-set+json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    }),
    close: () =>
      new Promise<void>((r) => {
        state.server.closeAllConnections();
        state.server.close(() => r());
      }),
  };
  state.server.listen(port, '127.0.0.1');
  await once(state.server, 'listening');
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return state;
}

const now = () => Math.floor(Date.now() / 1000);

function sign(key: Key, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({
    sub: 'user-42',
    roles: ['reader', 'writer'],
    iss: ISS,
    aud: AUD,
    iat: now(),
    exp: now() + 600,
    ...claims,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

/** A compact JWS signed by hand (RS256), with any header: what jose would refuse to make. */
async function signRaw(key: Key, header: Record<string, unknown>, payload: JWTPayload): Promise<string> {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const sig = await webcrypto.subtle.sign(
    'RSASSA-PKCS1-v1_5',
    key.privateKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

const b64url = (o: unknown) =>
  Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

const mw = (source: string, extra = '') => `  api:
    jwt:
      ${source}
      issuer: ${ISS}
      audience: ${AUD}
      algorithms: [RS256, ES256]
      clockSkew: 30s
      cookie: session
      claimsToHeaders: { sub: x-user-id, roles: x-roles, email: x-email }${extra}`;

const MISSING = 'Bearer realm="api"';
const INVALID = 'Bearer realm="api", error="invalid_token"';
const bearer = (t: string): [string, string][] => [['authorization', `Bearer ${t}`]];

test('a valid token gets through on every transport; claims go upstream; forged claim headers never do', {
  skip: skipWithoutOpenssl,
}, async () => {
  const k1 = await makeKey('k1');
  const jwks = await jwksServer([k1]);
  const w = await world(mw(`jwksUrl: ${jwks.url}`), 'api');
  try {
    const token = await sign(k1, { email: 'ünï@example.test' });
    for (const tr of ALL) {
      // HTTP/2 field names are lower case; HTTP/1.1 ones in any case.
      const forged: [string, string][] = [
        ['x-user-id', 'admin'],
        [tr === 'h2' || tr === 'h2c' ? 'x-roles' : 'X-Roles', 'root'],
        ['x-email', 'evil@example.test'],
      ];
      const a = await w.ask(tr, { target: '/v1?q=1', headers: [...forged, ...bearer(token)] });
      assert.equal(a.status, 200, `${tr}: ${a.raw.slice(0, 300)}`);
      const seen = echoed(a).headers;
      assert.equal(seen['x-user-id'], 'user-42', tr);
      assert.equal(seen['x-roles'], 'reader,writer', tr);
      // UTF-8 bytes on the wire; Node's origin reads them as latin1.
      const email = String(w.up.seen.at(-1)?.headers['x-email']);
      assert.equal(Buffer.from(email, 'latin1').toString('utf8'), 'ünï@example.test', tr);
      // Without a token, the forged headers are refused with the request.
      const none = await w.ask(tr, { target: '/', headers: forged });
      assert.equal(none.status, 401, tr);
      assert.equal(header(none, 'www-authenticate'), MISSING, `${tr}: no error code without a token`);
    }
    for (const s of w.up.seen) {
      assert.equal(s.rawHeaders.filter((h) => h.toLowerCase() === 'x-user-id').length, 1);
      assert.equal(s.headers['x-user-id'], 'user-42');
    }
    // A token without some claims: their headers are removed, not left as the client sent them.
    const bare = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISS)
      .setAudience(AUD)
      .setExpirationTime(now() + 60)
      .sign(k1.privateKey);
    const forged: [string, string][] = [
      ['x-user-id', 'admin'],
      ['x-roles', 'root'],
      ['x-email', 'evil@example.test'],
    ];
    const a = await w.ask('h1', { target: '/', headers: [...forged, ...bearer(bare)] });
    assert.equal(a.status, 200);
    const seen = echoed(a).headers;
    assert.equal(seen['x-user-id'], undefined);
    assert.equal(seen['x-roles'], undefined);
    assert.equal(seen['x-email'], undefined);
    // A claim with a line break is not sent (no header injection).
    const evil = await sign(k1, { sub: 'a\r\nx-admin: 1' });
    const e = await w.ask('h1', { target: '/', headers: bearer(evil) });
    assert.equal(e.status, 200);
    assert.equal(echoed(e).headers['x-user-id'], undefined);
    assert.equal(echoed(e).headers['x-admin'], undefined);
  } finally {
    await w.close();
    await jwks.close();
  }
});

test('attack tokens get one and the same 401 invalid_token on every transport', {
  skip: skipWithoutOpenssl,
}, async () => {
  const k1 = await makeKey('k1');
  const other = await makeKey('k1'); // same kid, another key
  const es = await makeKey('e1', 'ES256');
  const ps = await makeKey('p1', 'PS256'); // not on the allow-list
  const jwks = await jwksServer([k1, es, ps]);
  const w = await world(mw(`jwksUrl: ${jwks.url}`), 'api');
  try {
    const good = await sign(k1);
    const [h, p, s] = good.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    const publicPem = k1.publicPem;
    const attacks: Record<string, string> = {
      'alg none': `${b64url({ alg: 'none', typ: 'JWT' })}.${p}.`,
      'alg none, signature kept': `${b64url({ alg: 'none', kid: 'k1' })}.${p}.${s}`,
      'HS256 with the RSA public key as secret': await new SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .sign(new TextEncoder().encode(publicPem)),
      'HS256 with the JWK as secret': await new SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .sign(new TextEncoder().encode(JSON.stringify(k1.publicJwk))),
      'tampered payload': `${h}.${b64url({ ...payload, sub: 'admin' })}.${s}`,
      'tampered signature': `${h}.${p}.${s.slice(0, -4)}AAAA`,
      'signed by another key with the same kid': await sign(other),
      'expired beyond the skew': await sign(k1, { exp: now() - 120 }),
      'not valid before, beyond the skew': await sign(k1, { nbf: now() + 120 }),
      'wrong issuer': await new SignJWT({ sub: 'x' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer('https://evil.test')
        .setAudience(AUD)
        .setExpirationTime(now() + 60)
        .sign(k1.privateKey),
      'wrong audience': await new SignJWT({ sub: 'x' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(ISS)
        .setAudience('someone-else')
        .setExpirationTime(now() + 60)
        .sign(k1.privateKey),
      'an algorithm off the allow-list (PS256)': await sign(ps),
      'alg and key mismatch (ES256 header, RSA key)': `${b64url({ alg: 'ES256', kid: 'k1' })}.${p}.${s}`,
      'unknown crit': await signRaw(k1, { alg: 'RS256', kid: 'k1', crit: ['exp2'], exp2: 1 }, payload),
      'not a JWT': 'abc.def.ghi',
      'two parts': `${h}.${p}`,
      'a JWE-shaped token': `${h}.a.b.c.d`,
      'too long': `${h}.${'A'.repeat(20_000)}.${s}`,
    };
    for (const tr of ALL) {
      for (const [what, token] of Object.entries(attacks)) {
        const a = await w.ask(tr, { target: '/', headers: bearer(token) });
        assert.equal(a.status, 401, `${tr}: ${what}`);
        assert.equal(header(a, 'www-authenticate'), INVALID, `${tr}: ${what}: no error_description`);
      }
      assert.equal((await w.ask(tr, { target: '/', headers: bearer(good) })).status, 200, tr);
    }
    assert.equal(w.up.seen.length, ALL.length, 'only the good token got through');
    // Within the skew, exp and nbf are tolerated.
    for (const claims of [{ exp: now() - 10 }, { nbf: now() + 10 }]) {
      const a = await w.ask('h1', { target: '/', headers: bearer(await sign(k1, claims)) });
      assert.equal(a.status, 200, JSON.stringify(claims));
    }
    assert.equal((await w.ask('h1', { target: '/', headers: bearer(await sign(es)) })).status, 200, 'ES256');
  } finally {
    await w.close();
    await jwks.close();
  }
});

test('rotation: an unknown kid refetches the JWKS once; a flood of made-up kids does not refetch each', {
  skip: skipWithoutOpenssl,
}, async () => {
  const k1 = await makeKey('k1');
  const jwks = await jwksServer([k1]);
  const w = await world(mw(`jwksUrl: ${jwks.url}`), 'api');
  try {
    await until(() => jwks.hits === 1, 5000, 'the keys fetched at start');
    const t1 = await sign(k1);
    for (const tr of ALL)
      assert.equal((await w.ask(tr, { target: '/', headers: bearer(t1) })).status, 200, tr);
    assert.equal(jwks.hits, 1, 'the set is cached');
    // The issuer rotates: k2 signs from now on, k1 is withdrawn.
    const k2 = await makeKey('k2');
    jwks.keys = [k2];
    const t2 = await sign(k2);
    const many = await Promise.all(ALL.map((tr) => w.ask(tr, { target: '/', headers: bearer(t2) })));
    assert.deepEqual(
      many.map((a) => a.status),
      ALL.map(() => 200),
    );
    assert.equal(jwks.hits, 2, 'one refetch for the new kid, shared by the requests in flight');
    // Made-up kids, signed by a key the issuer never published: no refetch each.
    const rogue = await makeKey('x');
    const flood = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const t = await sign({ ...rogue, kid: `random-${i}-${Math.random()}` });
        return (await w.ask(i % 2 ? 'h2c' : 'h1', { target: '/', headers: bearer(t) })).status;
      }),
    );
    assert.ok(flood.every((s) => s === 401));
    assert.equal(jwks.hits, 2, 'the flood made no JWKS request');
    // A new token from the withdrawn key is refused (the old one may live on in the verified-token cache, ≤ 60 s).
    const late = await sign(k1, { sub: 'late' });
    assert.equal((await w.ask('h1', { target: '/', headers: bearer(late) })).status, 401);
  } finally {
    await w.close();
    await jwks.close();
  }
});

test('a verified token is remembered: one signature check, not one per request', {
  skip: skipWithoutOpenssl,
}, async () => {
  const k1 = await makeKey('k1');
  const jwks = await jwksServer([k1]);
  const w = await world(mw(`jwksUrl: ${jwks.url}`), 'api');
  try {
    const t = await sign(k1);
    const before = jwtStats.verifications;
    const first = await Promise.all(
      Array.from({ length: 8 }, () => w.ask('h1', { target: '/', headers: bearer(t) })),
    );
    assert.ok(first.every((a) => a.status === 200));
    for (const tr of ALL) assert.equal((await w.ask(tr, { target: '/', headers: bearer(t) })).status, 200);
    assert.equal(jwtStats.verifications - before, 1);
    // An expired token is not remembered past its exp (+ skew): here it never verifies at all.
    const expired = await sign(k1, { exp: now() - 100 });
    for (let i = 0; i < 2; i++)
      assert.equal((await w.ask('h1', { target: '/', headers: bearer(expired) })).status, 401);
  } finally {
    await w.close();
    await jwks.close();
  }
});

test('the token from a cookie; two Authorization fields are a bad request', {
  skip: skipWithoutOpenssl,
}, async () => {
  const k1 = await makeKey('k1');
  const jwks = await jwksServer([k1]);
  const w = await world(mw(`jwksUrl: ${jwks.url}`), 'api');
  try {
    const t = await sign(k1);
    for (const tr of ALL) {
      const c = await w.ask(tr, { target: '/', headers: [['cookie', `theme=dark; session=${t}; x=1`]] });
      assert.equal(c.status, 200, `${tr}: cookie`);
      // Another scheme in Authorization: the cookie still counts.
      const b = await w.ask(tr, {
        target: '/',
        headers: [
          ['authorization', 'Basic YTpi'],
          ['cookie', `session=${t}`],
        ],
      });
      assert.equal(b.status, 200, `${tr}: Basic + cookie`);
      const bad = await w.ask(tr, { target: '/', headers: [['cookie', 'session=nope']] });
      assert.equal(header(bad, 'www-authenticate'), INVALID, tr);
      if (tr === 'h2' || tr === 'h2c') continue; // node:http2's client sends one Authorization field
      const two = await w.ask(tr, {
        target: '/',
        headers: [
          ['authorization', `Bearer ${t}`],
          ['authorization', 'Bearer other'],
        ],
      });
      assert.equal(two.status, 400, tr);
      assert.equal(header(two, 'www-authenticate'), 'Bearer realm="api", error="invalid_request"');
    }
    for (const tr of ['h2', 'h2c'] as const) {
      const seen = w.up.seen.length;
      const r = await rawH2(
        tr === 'h2' ? w.L.tls : w.L.h2c,
        [
          [':method', 'GET'],
          [':scheme', tr === 'h2' ? 'https' : 'http'],
          [':authority', 'gh.test'],
          [':path', '/'],
          ['authorization', `Bearer ${t}`],
          ['authorization', 'Bearer other'],
        ],
        { tls: tr === 'h2' ? { ca: w.L.ca, servername: 'gh.test' } : undefined },
      );
      assert.equal(r.kind, 'headers');
      assert.equal(r.status, 400, `${tr}: two Authorization fields`);
      assert.equal(w.up.seen.length, seen);
    }
  } finally {
    await w.close();
    await jwks.close();
  }
});

test('WebSocket upgrades: refused without a token, open with one, claims sent on the handshake', {
  skip: skipWithoutOpenssl,
}, async () => {
  const k1 = await makeKey('k1');
  const jwks = await jwksServer([k1]);
  const w = await world(mw(`jwksUrl: ${jwks.url}`), 'api');
  try {
    const t = await sign(k1);
    for (const tls of [false, true]) {
      const ca = tls ? w.L.ca : undefined;
      assert.equal(await wsEcho(`${w.wsUrl(tls)}/ws`, { 'x-user-id': 'admin' }, ca), 'status:401');
      assert.equal(await wsEcho(`${w.wsUrl(tls)}/ws`, { authorization: 'Bearer x.y.z' }, ca), 'status:401');
      assert.equal(
        await wsEcho(`${w.wsUrl(tls)}/ws`, { authorization: `Bearer ${t}`, 'x-user-id': 'admin' }, ca),
        'echo:hello',
      );
    }
    assert.equal(w.upgrades.length, 2);
    for (const u of w.upgrades) assert.equal(u['x-user-id'], 'user-42');
    for (const tr of UPGRADES) {
      const a = await w.ask(tr, { target: '/ws' });
      assert.equal(a.status, 401, tr);
      assert.equal(header(a, 'www-authenticate'), MISSING);
    }
  } finally {
    await w.close();
    await jwks.close();
  }
});

test('no keys to be had: 503 auth_unavailable (fail closed), then served once the JWKS answers', {
  skip: skipWithoutOpenssl,
}, async () => {
  const k1 = await makeKey('k1');
  const jwks = await jwksServer([k1]);
  const url = jwks.url;
  await jwks.close();
  const w = await world(mw(`jwksUrl: ${url}`), 'api');
  const write = process.stderr.write.bind(process.stderr);
  const said: string[] = [];
  process.stderr.write = ((c: string) => {
    said.push(String(c));
    return true;
  }) as typeof process.stderr.write;
  try {
    const t = await sign(k1);
    for (const tr of ALL) {
      const a = await w.ask(tr, { target: '/', headers: bearer(t) });
      assert.equal(a.status, 503, tr);
      assert.match(a.body, /auth_unavailable/);
    }
    assert.equal(w.up.seen.length, 0);
    assert.ok(
      said.some((l) => /jwt\.jwksUrl: cannot fetch/.test(l)),
      said.join(''),
    );
    // The endpoint comes back (same address): the keys are fetched again after RETRY_MS.
    const back = await jwksServer([k1], Number(new URL(url).port));
    try {
      const end = Date.now() + 15_000;
      let status = 0;
      while (status !== 200 && Date.now() < end) {
        status = (await w.ask('h1', { target: '/', headers: bearer(t) })).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(status, 200, 'served once the JWKS answers');
    } finally {
      await back.close();
    }
  } finally {
    process.stderr.write = write;
    await w.close();
  }
});

test('a local key file: PEM, JWK and JWKS; HS256 with the PEM as the secret is refused', {
  skip: skipWithoutOpenssl,
}, async () => {
  const k1 = await makeKey('k1');
  const k2 = await makeKey('k2', 'ES256');
  const dir = tempDir();
  const pem = k1.publicPem;
  const files = {
    pem: join(dir, 'key.pem'),
    jwk: join(dir, 'key.jwk.json'),
    jwks: join(dir, 'keys.json'),
  };
  writeFileSync(files.pem, pem);
  writeFileSync(files.jwk, JSON.stringify({ ...k1.publicJwk, kid: undefined }));
  writeFileSync(files.jwks, JSON.stringify({ keys: [k1.publicJwk, k2.publicJwk] }));
  for (const [kind, file] of Object.entries(files)) {
    const w = await world(mw(`keyFile: ${file}`), 'api');
    try {
      for (const tr of ALL) {
        const a = await w.ask(tr, {
          target: '/',
          headers: [['x-user-id', 'admin'], ...bearer(await sign(k1))],
        });
        assert.equal(a.status, 200, `${kind} ${tr}`);
        assert.equal(echoed(a).headers['x-user-id'], 'user-42');
      }
      const confused = await new SignJWT({ sub: 'admin' })
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .setIssuer(ISS)
        .setAudience(AUD)
        .sign(new TextEncoder().encode(pem));
      const a = await w.ask('h1', { target: '/', headers: bearer(confused) });
      assert.equal(a.status, 401, `${kind}: HS/RS confusion`);
      const es = await w.ask('h1', { target: '/', headers: bearer(await sign(k2)) });
      assert.equal(es.status, kind === 'jwks' ? 200 : 401, `${kind}: the ES256 key is only in the JWKS file`);
    } finally {
      await w.close();
    }
  }
});

test('validation: one of jwksUrl and keyFile, a usable public key file, no reserved claim headers', () => {
  const dir = tempDir();
  const oct = join(dir, 'oct.json');
  writeFileSync(oct, JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }));
  const junk = join(dir, 'junk.pem');
  writeFileSync(junk, '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n');
  const check = (jwt: string) =>
    validateText(
      `
listeners: [{ name: web, address: 127.0.0.1:0 }]
middlewares:
  api: { jwt: { ${jwt} } }
routes: [{ name: r, middlewares: [api], upstream: u }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:1" }] } }
`,
      'gh.yaml',
    ).errors.map((e) => `${e.key}: ${e.reason}`);
  assert.deepEqual(check('issuer: x'), [
    'middlewares.api.jwt: needs jwksUrl or keyFile (where the signing keys are)',
  ]);
  assert.deepEqual(check(`jwksUrl: "http://127.0.0.1:1/k", keyFile: ${junk}`).slice(0, 1), [
    'middlewares.api.jwt.keyFile: use one of jwksUrl and keyFile, not both',
  ]);
  assert.match(check(`keyFile: ${oct}`).join(), /symmetric \(oct\) key/);
  assert.match(check(`keyFile: ${junk}`).join(), /not a usable public key/);
  assert.match(check(`keyFile: ${join(dir, 'none.pem')}`).join(), /cannot read .*\(ENOENT\)/);
  assert.match(
    check('jwksUrl: "http://127.0.0.1:1/k", claimsToHeaders: { sub: host }').join(),
    /claimsToHeaders\.sub: host is a header the proxy sets/,
  );
  assert.match(check('jwksUrl: "http://127.0.0.1:1/k", cookie: "a b"').join(), /not a valid cookie name/);
  assert.deepEqual(check('jwksUrl: "http://127.0.0.1:1/k", claimsToHeaders: { sub: x-user }'), []);
});
