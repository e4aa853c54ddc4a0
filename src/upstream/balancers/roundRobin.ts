// Smooth weighted round robin, as nginx does it: every pick adds each target's weight to its
// `current`, takes the largest, and subtracts the total from the winner. Weights 5,1,1 give
// a a b a c a a rather than a a a a a b c.
import type { Target } from '../target.ts';
import { type Balancer, type BalancerKind, usable } from './types.ts';

export const roundRobin: BalancerKind = {
  create(targets: readonly Target[]): Balancer {
    return {
      pick(_input, exclude) {
        let best: Target | undefined;
        let total = 0;
        for (const t of targets) {
          if (!usable(t, exclude)) continue;
          const w = t.effectiveWeight();
          t.current += w;
          total += w;
          if (best === undefined || t.current > best.current) best = t;
        }
        if (best !== undefined) best.current -= total;
        return best;
      },
    };
  },
};
