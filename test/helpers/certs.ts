// Certificates made at test time with the openssl CLI (never committed): a CA, and leaf
// certificates with the subjectAltNames a test asks for, signed by it. EC P-256 keys, fast to make.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'gatehouse-certs-'));
}

export function makeCA(dir: string, name = 'Gatehouse Test CA'): Pem {
  const keyFile = join(dir, `${name.replace(/\W+/g, '-')}.key`);
  const certFile = join(dir, `${name.replace(/\W+/g, '-')}.pem`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      keyFile,
      '-sha256',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-out',
      certFile,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

/**
 * A leaf certificate for `names` (DNS names, or IP addresses), signed by `ca`. `client: true` makes a
 * client-authentication certificate. `file` names the output files (so a test can overwrite them).
 */
export function makeCert(
  dir: string,
  ca: Pem,
  cn: string,
  names: string[],
  opts: { client?: boolean; file?: string; ocspUrl?: string } = {},
): Pem {
  const base = join(dir, opts.file ?? cn.replace(/[^\w.-]+/g, '_'));
  const keyFile = `${base}.key`;
  const certFile = `${base}.pem`;
  const csr = `${base}.csr`;
  const ext = `${base}.ext`;
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], dir);
  openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${cn}/O=Gatehouse Tests`, '-out', csr], dir);
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}`,
      ...(san ? [`subjectAltName=${san}`] : []),
      ...(opts.ocspUrl ? [`authorityInfoAccess=OCSP;URI:${opts.ocspUrl}`] : []),
    ].join('\n'),
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-CAcreateserial',
      '-days',
      '2',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      certFile,
    ],
    dir,
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}
