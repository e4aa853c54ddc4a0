// `cache`: placeholder, replaced by the RFC 9111 cache.
import type { CacheConfig } from '../config/schema.ts';
import type { MiddlewareKind } from './types.ts';

export const cache: MiddlewareKind<CacheConfig> = {
  create(name) {
    return { name };
  },
};
