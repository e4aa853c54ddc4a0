// OCSP stapling against a real OCSP responder (`openssl ocsp`) on loopback: a certificate that names
// the responder gets its status stapled, and a client that asks for it receives a valid answer.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { makeCA, makeCert, tempDir } from '../helpers/certs.ts';
import { start, until } from '../helpers/gatehouse.ts';
import { freePort } from '../helpers/net.ts';
import { origin } from '../helpers/origin.ts';
import { needCommand } from '../helpers/require.ts';

/** `20261125110400Z`-style time for an OpenSSL CA index line (YYMMDDHHMMSSZ). */
function indexTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
}

/** Waits for the responder to say it is listening (a bare TCP probe would tie up its one-at-a-time loop). */
async function ready(p: ChildProcess, ms = 5000): Promise<void> {
  let text = '';
  const collect = (c: Buffer) => {
    text += c;
  };
  p.stdout?.on('data', collect);
  p.stderr?.on('data', collect);
  await until(() => /waiting for OCSP client connections/.test(text), ms, 'the OCSP responder');
}

test('OCSP stapling: the responder is asked, and clients that ask get the stapled answer', async (t) => {
  if (!needCommand(t, 'openssl', 'the OCSP test runs `openssl ocsp` as the responder')) return;
  const dir = tempDir();
  const ca = makeCA(dir);
  const ocspPort = await freePort();
  const leaf = makeCert(dir, ca, 'ocsp.example.test', ['ocsp.example.test'], {
    ocspUrl: `http://127.0.0.1:${ocspPort}`,
  });
  const x = new X509Certificate(leaf.cert);
  // The CA's database: this certificate is valid.
  const index = join(dir, 'index.txt');
  writeFileSync(
    index,
    `V\t${indexTime(new Date(x.validTo))}\t\t${x.serialNumber}\tunknown\t/CN=ocsp.example.test/O=Gatehouse Tests\n`,
  );
  const chain = join(dir, 'chain.pem');
  writeFileSync(chain, leaf.cert + ca.cert);
  const responder: ChildProcess = spawn(
    'openssl',
    [
      'ocsp',
      '-index',
      index,
      '-port',
      String(ocspPort),
      '-rsigner',
      ca.certFile,
      '-rkey',
      ca.keyFile,
      '-CA',
      ca.certFile,
      '-ignore_err',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const app = await origin();
  try {
    await ready(responder);
    const gh = await start(`
listeners:
  - name: secure
    address: "127.0.0.1:0"
    tls: { certificates: [{ certFile: ${chain}, keyFile: ${leaf.keyFile} }] }
routes: [{ name: all, upstream: u }]
upstreams: { u: { targets: [{ url: ${app.url} }] } }
`);
    try {
      await until(
        () => gh.messages.some((m) => m.includes('OCSP status "good" stapled')),
        10_000,
        'a stapled answer',
      ).catch((err: Error) => {
        throw new Error(`${err.message}; log: ${gh.messages.join(' | ')}`);
      });
      const port = Number(new URL(gh.url()).port);
      const stapled = await new Promise<Buffer | null>((resolve, reject) => {
        let response: Buffer | null = null;
        const s = tlsConnect(
          { host: '127.0.0.1', port, ca: ca.cert, servername: 'ocsp.example.test', requestOCSP: true },
          () => {
            s.destroy();
            resolve(response);
          },
        );
        s.on('OCSPResponse', (r: Buffer) => {
          response = r;
        });
        s.on('error', reject);
      });
      assert.ok(stapled && stapled.length > 0, 'an OCSP response was stapled');
      const file = join(dir, 'stapled.der');
      writeFileSync(file, stapled);
      const out = execFileSync(
        'openssl',
        ['ocsp', '-respin', file, '-CAfile', ca.certFile, '-issuer', ca.certFile, '-cert', leaf.certFile],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      assert.match(out, /: good/, out);
    } finally {
      await gh.close();
    }
  } finally {
    responder.kill('SIGTERM');
    await app.close();
  }
});
