// Weighted least connections: the target with the fewest in-flight requests per unit of weight.
// Ties rotate, so an idle pool is not always served by its first target.
import type { Target } from '../target.ts';
import { type Balancer, type BalancerKind, usable } from './types.ts';

export const leastConnections: BalancerKind = {
  create(targets: readonly Target[]): Balancer {
    let offset = 0;
    const n = targets.length;
    return {
      pick(_input, exclude) {
        let best: Target | undefined;
        let bestLoad = Number.POSITIVE_INFINITY;
        offset = (offset + 1) % n;
        for (let i = 0; i < n; i++) {
          const t = targets[(offset + i) % n];
          if (!usable(t, exclude)) continue;
          const load = t.active / t.effectiveWeight();
          if (load < bestLoad) {
            best = t;
            bestLoad = load;
          }
        }
        return best;
      },
    };
  },
};
