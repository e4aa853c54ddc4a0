// `apiKey`: PLACEHOLDER, being written.
import type { ApiKeyConfig } from '../config/schema.ts';
import type { MiddlewareKind } from './types.ts';

export const apiKey: MiddlewareKind<ApiKeyConfig> = {
  create(name) {
    return { name };
  },
};
