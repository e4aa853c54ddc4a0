// Checks a password against one accepted htpasswd hash (auth/htpasswd.ts): bcrypt through bcryptjs,
// SHA-256/512-crypt through auth/shaCrypt.ts. Synchronous and slow by design (tens to hundreds of
// milliseconds): the proxy calls it on its password thread (auth/passwords.ts), tests call it
// directly.
import { timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { shaCrypt } from './shaCrypt.ts';

export function checkPassword(password: string, hash: string): boolean {
  if (hash.startsWith('$2')) return bcrypt.compareSync(password, hash);
  if (hash.startsWith('$5$') || hash.startsWith('$6$')) {
    const got = Buffer.from(shaCrypt(password, hash));
    const want = Buffer.from(hash);
    return got.length === want.length && timingSafeEqual(got, want);
  }
  return false;
}
