// Smooth weighted round robin, as nginx does it: every pick adds each target's weight to its
// `current`, takes the largest, and subtracts the total from the winner. Weights 5,1,1 give
// a a b a c a a rather than a a a a a b c. The `current` values are this balancer's own (one slot
// per target), so two balancers over the same targets never disturb each other.
import type { Target } from '../target.ts';
import { type Balancer, type BalancerKind, usable } from './types.ts';

interface Slot {
  readonly target: Target;
  current: number;
}

export const roundRobin: BalancerKind = {
  create(targets: readonly Target[]): Balancer {
    const slots: Slot[] = targets.map((target) => ({ target, current: 0 }));
    return {
      pick(_input, exclude) {
        let best: Slot | undefined;
        let total = 0;
        for (const s of slots) {
          if (!usable(s.target, exclude)) continue;
          const w = s.target.effectiveWeight();
          s.current += w;
          total += w;
          if (best === undefined || s.current > best.current) best = s;
        }
        if (best === undefined) return undefined;
        best.current -= total;
        return best.target;
      },
    };
  },
};
