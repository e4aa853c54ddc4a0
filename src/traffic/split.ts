// `split`: a route's requests divided between upstreams by weight (canaries, A/B tests).
//
// The choice is smooth weighted round robin (nginx's): every pick adds each side's weight to its
// running score, takes the highest and subtracts the total from it. Over N requests each side gets
// its exact share (± 1), and within any short window the sides interleave instead of arriving in
// runs, so a 5% canary sees one request in every twenty rather than bursts.
//
// With `sticky`, the side a client first got is kept in a cookie `<side>.<signature>`: HMAC-SHA256
// over the route and the side, so a client cannot move itself to another side by editing it
// (unless the route sets allowOverride). A client whose side is still in the split, with a weight
// above 0, stays there when the weights change (by reload or the admin API); one whose side has
// gone (or was set to 0, to drain it) is assigned afresh.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RouteConfig } from '../config/schema.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { cookieValue } from '../pipeline/template.ts';
import type { Upstream } from '../upstream/upstream.ts';

interface Side {
  readonly upstream: Upstream;
  weight: number;
  current: number;
  /** Requests sent to this side. */
  requests: number;
}

/** A random key per process when the route names no secret (sides survive reloads, not restarts). */
const PROCESS_SECRET = randomBytes(32);

export class Split {
  readonly route: string;
  readonly sides: Side[];
  readonly sticky: NonNullable<RouteConfig['sticky']> | null;
  readonly #key: Buffer;

  constructor(route: string, sides: { upstream: Upstream; weight: number }[], sticky: RouteConfig['sticky']) {
    this.route = route;
    this.sides = sides.map((s) => ({ upstream: s.upstream, weight: s.weight, current: 0, requests: 0 }));
    this.sticky = sticky ?? null;
    this.#key = sticky?.secret !== undefined ? Buffer.from(sticky.secret) : PROCESS_SECRET;
  }

  /** The upstream for this request; sets the sticky cookie on the answer when it assigns a side. */
  pick(ctx: RequestContext): Upstream | undefined {
    const sticky = this.sticky;
    if (sticky !== null) {
      const kept = this.fromCookie(cookieValue(ctx.req.headers.cookie, sticky.cookie));
      if (kept !== undefined) {
        kept.requests++;
        return kept.upstream;
      }
    }
    const side = this.next();
    if (side === undefined) return undefined;
    side.requests++;
    if (sticky !== null) {
      const secure = ctx.scheme === 'https' ? '; Secure' : '';
      ctx.res.setHeader(
        'set-cookie',
        `${sticky.cookie}=${this.cookieFor(side.upstream.name)}; Max-Age=${Math.floor(sticky.maxAge / 1000)}; Path=/; HttpOnly; SameSite=Lax${secure}`,
      );
    }
    return side.upstream;
  }

  /** Smooth weighted round robin over the sides with weight > 0. */
  next(): Side | undefined {
    let total = 0;
    let best: Side | undefined;
    for (const s of this.sides) {
      if (s.weight <= 0) continue;
      s.current += s.weight;
      total += s.weight;
      if (best === undefined || s.current > best.current) best = s;
    }
    if (best !== undefined) best.current -= total;
    return best;
  }

  cookieFor(side: string): string {
    return `${side}.${this.sign(side)}`;
  }

  sign(side: string): string {
    return createHmac('sha256', this.#key).update(`${this.route}\0${side}`).digest('base64url').slice(0, 22);
  }

  /** The side a cookie names, when it is signed (or overrides are allowed) and still live. */
  fromCookie(v: string | undefined): Side | undefined {
    if (v === undefined || v === '') return undefined;
    const dot = v.lastIndexOf('.');
    const name = dot < 0 ? v : v.slice(0, dot);
    const side = this.sides.find((s) => s.upstream.name === name && s.weight > 0);
    if (side === undefined) return undefined;
    if (this.sticky?.allowOverride) return side;
    if (dot < 0) return undefined;
    const got = Buffer.from(v.slice(dot + 1));
    const want = Buffer.from(this.sign(name));
    return got.length === want.length && timingSafeEqual(got, want) ? side : undefined;
  }

  /** New weights by upstream name (the admin API); sides not named keep theirs. */
  setWeights(weights: Record<string, number>): string | null {
    for (const [name, w] of Object.entries(weights)) {
      if (!this.sides.some((s) => s.upstream.name === name)) return `no side named "${name}" in this split`;
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) return `${name}: expected a number ≥ 0`;
    }
    const after = this.sides.map((s) => weights[s.upstream.name] ?? s.weight);
    if (after.every((w) => w === 0)) return 'at least one side needs a weight above 0';
    this.sides.forEach((s, i) => {
      s.weight = after[i];
      s.current = 0;
    });
    return null;
  }

  /** The sides, their weights and how many requests each got (admin API, dashboard). */
  describe(): { upstream: string; weight: number; requests: number }[] {
    return this.sides.map((s) => ({ upstream: s.upstream.name, weight: s.weight, requests: s.requests }));
  }
}
