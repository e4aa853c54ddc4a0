// `basicAuth`: PLACEHOLDER, being written.
import type { BasicAuthConfig } from '../config/schema.ts';
import type { MiddlewareKind } from './types.ts';

export const basicAuth: MiddlewareKind<BasicAuthConfig> = {
  create(name) {
    return { name };
  },
};
