// `jwt`: PLACEHOLDER, being written.
import type { JwtConfig } from '../config/schema.ts';
import type { MiddlewareKind } from './types.ts';

export const jwt: MiddlewareKind<JwtConfig> = {
  create(name) {
    return { name };
  },
};
