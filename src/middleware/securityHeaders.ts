// `securityHeaders`: the response headers every site should send, set at the edge for every answer
// (the upstream's and Gatehouse's own: 401, 403, 404, 429, 5xx pages), and server banners removed.
//
//   strict  Strict-Transport-Security: max-age=31536000; includeSubDomains (HTTPS only),
//           X-Content-Type-Options: nosniff, X-Frame-Options: DENY and CSP frame-ancestors 'none',
//           Referrer-Policy: no-referrer, Cross-Origin-Opener-Policy: same-origin
//   basic   nosniff, X-Frame-Options: SAMEORIGIN, Referrer-Policy: strict-origin-when-cross-origin
import type { SecurityHeadersConfig } from '../config/schema.ts';
import type { MiddlewareKind } from './types.ts';

export const securityHeaders: MiddlewareKind<SecurityHeadersConfig> = {
  create(name, config) {
    const strict = config.preset === 'strict';
    const hstsCfg =
      config.hsts ?? (strict ? { maxAge: 31_536_000_000, includeSubDomains: true, preload: false } : null);
    const hsts =
      hstsCfg === null || hstsCfg.maxAge === 0
        ? null
        : `max-age=${Math.floor(hstsCfg.maxAge / 1000)}${hstsCfg.includeSubDomains ? '; includeSubDomains' : ''}${hstsCfg.preload ? '; preload' : ''}`;
    const frame = config.frameOptions ?? (strict ? 'DENY' : 'SAMEORIGIN');
    const ancestors =
      frame === 'DENY' ? "frame-ancestors 'none'" : frame === 'SAMEORIGIN' ? "frame-ancestors 'self'" : null;
    const referrer = config.referrerPolicy ?? (strict ? 'no-referrer' : 'strict-origin-when-cross-origin');
    const remove = config.removeHeaders.map((h) => h.toLowerCase());
    const csp = config.contentSecurityPolicy;
    return {
      name,
      onResponse(ctx, head) {
        const h = head.headers;
        for (const r of remove) delete h[r];
        if (hsts !== null && ctx.scheme === 'https') h['strict-transport-security'] = hsts;
        h['x-content-type-options'] = 'nosniff';
        if (frame !== 'none') h['x-frame-options'] = frame;
        h['referrer-policy'] = referrer;
        if (strict) h['cross-origin-opener-policy'] ??= 'same-origin';
        if (csp !== undefined) h['content-security-policy'] = csp;
        else if (ancestors !== null) {
          // Keep the upstream's policy and add frame-ancestors when it has none.
          const cur = h['content-security-policy'];
          const v = Array.isArray(cur) ? cur.join(', ') : cur;
          if (v === undefined || v === '') h['content-security-policy'] = ancestors;
          else if (!/frame-ancestors/i.test(v)) h['content-security-policy'] = `${v}; ${ancestors}`;
        }
      },
    };
  },
};
