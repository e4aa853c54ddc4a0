import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { upstreamSchema } from '../../src/config/schema.ts';
import { tlsMaterial } from '../../src/upstream/tlsMaterial.ts';

const upstream = (tls: Record<string, unknown>) =>
  upstreamSchema.parse({ targets: [{ url: 'https://127.0.0.1:4443' }], tls });

test('reads the CA, certificate and key files named in the config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tls-'));
  writeFileSync(join(dir, 'ca.pem'), 'CA');
  writeFileSync(join(dir, 'c.pem'), 'CERT');
  writeFileSync(join(dir, 'k.pem'), 'KEY');
  const m = tlsMaterial(
    'api',
    upstream({ caFile: join(dir, 'ca.pem'), certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem') }),
  );
  assert.deepEqual(
    { ca: m.ca, cert: m.cert, key: m.key, rejectUnauthorized: m.rejectUnauthorized },
    { ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: true },
  );
});

test('a file that cannot be read names the key and the file', () => {
  assert.throws(() => tlsMaterial('api', upstream({ keyFile: '/nonexistent/k.pem' })), {
    message: 'upstreams.api.tls.keyFile: cannot read /nonexistent/k.pem (ENOENT)',
  });
});
