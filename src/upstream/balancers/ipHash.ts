// Client address affinity by rendezvous (highest random weight) hashing: each target scores
// hash(ip, target) scaled by weight and the best available one wins. When a target goes away only
// its own clients move; when it comes back they return to it.
import type { Target } from '../target.ts';
import { hash32 } from './hash.ts';
import { type Balancer, type BalancerKind, usable } from './types.ts';

/** Weighted rendezvous hashing: score = -weight / ln(u), u uniform in (0,1) from the hash. */
export function rendezvous(
  targets: readonly Target[],
  seeds: readonly number[],
  key: string,
  exclude?: ReadonlySet<Target>,
): Target | undefined {
  let best: Target | undefined;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (!usable(t, exclude)) continue;
    const u = (hash32(key, seeds[i]) + 0.5) / 4294967296;
    const score = -t.weight / Math.log(u);
    if (score > bestScore) {
      best = t;
      bestScore = score;
    }
  }
  return best;
}

export const ipHash: BalancerKind = {
  create(targets: readonly Target[]): Balancer {
    const seeds = targets.map((t) => hash32(t.id));
    return { pick: (input, exclude) => rendezvous(targets, seeds, input.clientIp, exclude) };
  },
};
