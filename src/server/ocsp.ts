// OCSP stapling: for a certificate that names an OCSP responder (Authority Information Access) and
// whose file also holds its issuer, the responder is asked for the certificate's status in the
// background, and the answer is stapled to handshakes of clients that ask for it. It is refreshed
// every hour (every 30 s after a failure); a failed refresh keeps the last answer. The request is
// made with the `openssl ocsp` command (no OCSP/ASN.1 code of our own); without the command, nothing
// is stapled and the log says so once.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REFRESH_MS = 60 * 60 * 1000;
const RETRY_MS = 30 * 1000;

/** The PEM blocks of a file, in order (leaf first, then its chain). */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The OCSP responder URL a certificate names, if any. */
export function ocspUrl(cert: X509Certificate): string | undefined {
  const m = /OCSP - URI:(\S+)/.exec(cert.infoAccess ?? '');
  return m?.[1];
}

export class OcspStapler {
  /** The DER of the certificate this staples for (matched against the handshake's certificate). */
  readonly raw: Buffer;
  readonly url: string;
  response: Buffer | null = null;
  status = '';
  #dir: string;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastError = '';
  readonly #say: (msg: string) => void;
  readonly #label: string;

  constructor(leaf: string, issuer: string, url: string, label: string, say: (msg: string) => void) {
    this.raw = new X509Certificate(leaf).raw;
    this.url = url;
    this.#say = say;
    this.#label = label;
    this.#dir = mkdtempSync(join(tmpdir(), 'gatehouse-ocsp-'));
    writeFileSync(join(this.#dir, 'leaf.pem'), leaf);
    writeFileSync(join(this.#dir, 'issuer.pem'), issuer);
    this.#fetch();
  }

  #fetch(): void {
    if (this.#stopped) return;
    const out = join(this.#dir, 'response.der');
    execFile(
      'openssl',
      [
        'ocsp',
        '-issuer',
        join(this.#dir, 'issuer.pem'),
        '-cert',
        join(this.#dir, 'leaf.pem'),
        '-url',
        this.url,
        '-respout',
        out,
        '-noverify',
        '-no_nonce',
        '-timeout',
        '5',
      ],
      { timeout: 10_000 },
      (err, stdout) => {
        if (this.#stopped) return;
        const status = /leaf\.pem: (\w+)/.exec(stdout)?.[1];
        if (err || status === undefined) {
          const why = err
            ? (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? 'the openssl command is not installed'
              : 'no answer'
            : 'no status in the answer';
          if (why !== this.#lastError)
            this.#say(
              `${this.#label}: OCSP responder ${this.url}: ${why}; ${this.response ? 'keeping the last answer' : 'nothing stapled'}`,
            );
          this.#lastError = why;
          this.#schedule(RETRY_MS);
          return;
        }
        this.response = readFileSync(out);
        if (status !== this.status)
          this.#say(`${this.#label}: OCSP status "${status}" stapled (from ${this.url})`);
        this.status = status;
        this.#lastError = '';
        this.#schedule(REFRESH_MS);
      },
    );
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => this.#fetch(), ms);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
