// `faultInjection`: delay or abort a share of requests, for chaos tests of what sits behind and in
// front of Gatehouse. With allowHeader, a request may pick its own fault (`x-gatehouse-fault:
// abort=503` or `delay=200ms`, comma separated), for targeted tests; without it the header is
// ignored and not forwarded.
import type { FaultInjectionConfig } from '../config/schema.ts';
import { parseDuration } from '../config/units.ts';
import { removeHeader } from '../pipeline/headers.ts';
import type { LocalResponse, MiddlewareKind } from './types.ts';

const HEADER = 'x-gatehouse-fault';
/** The most a header may ask for: a test tool, not a way to hold connections open. */
const MAX_HEADER_DELAY = 60_000;

function abort(status: number): LocalResponse {
  return {
    status,
    reason: 'fault_injected',
    body: `fault injected: ${status}\n`,
    headers: { 'content-type': 'text/plain' },
  };
}

function sleep(ms: number): Promise<undefined> {
  return new Promise((r) => setTimeout(() => r(undefined), ms));
}

/** `abort=503, delay=200ms` → the faults asked for; unknown or malformed parts are ignored. */
function fromHeader(v: string): { abort?: number; delay?: number } {
  const out: { abort?: number; delay?: number } = {};
  for (const part of v.split(',')) {
    const [k, val] = part.split('=').map((x) => x.trim().toLowerCase());
    if (k === 'abort' && /^[1-5]\d\d$/.test(val ?? '')) out.abort = Number(val);
    else if (k === 'delay' && val !== undefined) {
      const ms = parseDuration(val);
      if (ms !== undefined) out.delay = Math.min(ms, MAX_HEADER_DELAY);
    }
  }
  return out;
}

export const faultInjection: MiddlewareKind<FaultInjectionConfig> = {
  create(name, config) {
    const delay = config.delay;
    const ab = config.abort;
    return {
      name,
      onRequest(ctx) {
        if (config.allowHeader) {
          const h = ctx.req.headers[HEADER];
          if (typeof h === 'string') {
            const f = fromHeader(h);
            if (f.abort !== undefined) return abort(f.abort);
            if (f.delay !== undefined) return sleep(f.delay);
          }
        }
        if (ab !== undefined && ab.percent > 0 && Math.random() * 100 < ab.percent) return abort(ab.status);
        if (delay !== undefined && delay.percent > 0 && Math.random() * 100 < delay.percent)
          return sleep(delay.duration);
        return undefined;
      },
      onUpstreamRequest(_ctx, ureq) {
        removeHeader(ureq.headers, HEADER);
      },
    };
  },
};
