import { randomUUID } from 'node:crypto';

// An incoming X-Request-Id is kept when it looks like an id (so a request can be followed across
// tiers), and replaced when it is long or has characters that could forge log lines.
const SAFE_ID = /^[A-Za-z0-9._:@+=/-]{1,128}$/;

export function requestId(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && SAFE_ID.test(incoming) ? incoming : randomUUID();
}
