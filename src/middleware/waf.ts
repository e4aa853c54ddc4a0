// `waf`: a web application firewall with anomaly scoring (docs/waf.md). The request stage
// inspects the path, query, headers and cookies at once, and — for url-encoded, JSON and
// multipart bodies — the first `inspectBody` bytes, read with peekBody (pipeline/body.ts) so the
// rest still streams to the upstream. Each matching rule adds its score once; at `threshold` the
// request is refused with 403 waf_blocked (mode block) or sent on with `x-gatehouse-waf: <score>;
// rules=<ids>` (mode detect). Blocks and detections go to the event sink in waf/events.ts.
import type { WafConfig } from '../config/schema.ts';
import { hasRequestBody, peekBody } from '../pipeline/body.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { bodyKind, type Inspection, WafEngine } from '../waf/engine.ts';
import { wafEvents } from '../waf/events.ts';
import type { LocalResponse, MiddlewareKind } from './types.ts';

const STATE = Symbol('waf');
const HEADER = 'x-gatehouse-waf';
const BLOCKED: LocalResponse = { status: 403, reason: 'waf_blocked' };
const BROKEN_BODY: LocalResponse = { status: 400, reason: 'bad_request' };

export const waf: MiddlewareKind<WafConfig> = {
  create(name, config) {
    const engine = new WafEngine(config);
    const detect = engine.mode === 'detect';

    const decide = (ctx: RequestContext, st: Inspection): LocalResponse | undefined => {
      if (st.rules.length === 0) return undefined;
      if (!st.over) {
        wafEvents.count(st.rules, 'scored');
        if (detect) keep(ctx, st);
        return undefined;
      }
      const action = detect ? 'detected' : 'blocked';
      wafEvents.count(st.rules, action);
      wafEvents.record({
        time: Date.now(),
        requestId: ctx.id,
        middleware: name,
        action,
        score: st.score,
        method: ctx.req.method ?? '',
        path: ctx.path.length > 256 ? ctx.path.slice(0, 256) : ctx.path,
        clientIp: ctx.clientIp,
        matches: st.matches,
      });
      if (detect) {
        keep(ctx, st);
        return undefined;
      }
      return BLOCKED;
    };

    return {
      name,
      onRequest(ctx) {
        const req = ctx.req;
        const st = engine.start(ctx.path);
        engine.inspectHead(st, {
          method: req.method ?? 'GET',
          path: ctx.path,
          query: ctx.query,
          rawHeaders: req.rawHeaders,
        });
        if (st.over && !detect) return decide(ctx, st);
        const contentType = req.headers['content-type'];
        if (
          engine.inspectBody === 0 ||
          ctx.upgrade !== null ||
          bodyKind(contentType) === null ||
          !hasRequestBody(req)
        )
          return decide(ctx, st);
        return peekBody(ctx, engine.inspectBody).then(
          (body) => {
            engine.inspectBodyBytes(st, body, ctx.bodyComplete, contentType as string);
            return decide(ctx, st);
          },
          () => BROKEN_BODY,
        );
      },
      onUpstreamRequest(ctx, ureq) {
        // A client's own x-gatehouse-waf never reaches the upstream: only ours does.
        const h = ureq.headers;
        for (let i = 0; i < h.length; i += 2) {
          if (h[i] === HEADER) {
            h.splice(i, 2);
            i -= 2;
          }
        }
        const st = ctx.vars?.get(STATE) as Inspection | undefined;
        if (st !== undefined) h.push(HEADER, `${st.score}; rules=${st.matches.map((m) => m.rule).join(',')}`);
      },
    };
  },
};

function keep(ctx: RequestContext, st: Inspection): void {
  ctx.vars ??= new Map();
  ctx.vars.set(STATE, st);
}
