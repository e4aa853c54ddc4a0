// `forwardAuth`: PLACEHOLDER, being written.
import type { ForwardAuthConfig } from '../config/schema.ts';
import type { MiddlewareKind } from './types.ts';

export const forwardAuth: MiddlewareKind<ForwardAuthConfig> = {
  create(name) {
    return { name };
  },
};
