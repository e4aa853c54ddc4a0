// TLS material for an upstream's https:// targets (CA bundle, client certificate and key), read when
// the Plan is compiled, so a missing file fails the build (and a reload keeps the old Plan) rather
// than the first request, and nothing reads files later.
import { readFileSync } from 'node:fs';
import type { UpstreamConfig } from '../config/schema.ts';
import type { TargetTls } from './target.ts';

/** Reads the files named in `upstreams.<name>.tls`; an error names the key and the file. */
export function tlsMaterial(name: string, cfg: UpstreamConfig): TargetTls {
  const read = (file: string | undefined, key: string) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(
        `upstreams.${name}.tls.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`,
      );
    }
  };
  return {
    ca: read(cfg.tls.caFile, 'caFile'),
    servername: cfg.tls.servername,
    cert: read(cfg.tls.certFile, 'certFile'),
    key: read(cfg.tls.keyFile, 'keyFile'),
    rejectUnauthorized: !cfg.tls.insecureSkipVerify,
    http2: cfg.http2,
  };
}
