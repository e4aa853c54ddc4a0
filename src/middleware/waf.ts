// `waf`: PLACEHOLDER, being written.
import type { WafConfig } from '../config/schema.ts';
import type { MiddlewareKind } from './types.ts';

export const waf: MiddlewareKind<WafConfig> = {
  create(name) {
    return { name };
  },
};
