// Static files for `static` routes (docs/static.md). PLACEHOLDER: the interface the request path
// calls; the implementation is being written.
import type { StaticConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import type { Runtime } from '../pipeline/runtime.ts';

export interface StaticHandler {
  serve(rt: Runtime, ctx: RequestContext, path: string): void;
}

export function compileStatic(_cfg: StaticConfig, _where: string): StaticHandler {
  return {
    serve(_rt, ctx) {
      ctx.res.writeHead(501, { 'content-length': '0' });
      ctx.res.end();
    },
  };
}
