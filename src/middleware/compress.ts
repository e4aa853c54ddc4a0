// `compress`: placeholder, replaced by the compression filter.
import type { CompressConfig } from '../config/schema.ts';
import type { MiddlewareKind } from './types.ts';

export const compress: MiddlewareKind<CompressConfig> = {
  create(name) {
    return { name };
  },
};
