// Power of two choices: two targets drawn at random (by weight), the less loaded one wins. Nearly
// as even as least connections, without every proxy worker herding onto the same target.
import type { Target } from '../target.ts';
import { type Balancer, type BalancerKind, usable } from './types.ts';

export const random2: BalancerKind = {
  create(targets: readonly Target[]): Balancer {
    const draw = (exclude: ReadonlySet<Target> | undefined, skip: Target | undefined): Target | undefined => {
      let total = 0;
      for (const t of targets) if (t !== skip && usable(t, exclude)) total += t.effectiveWeight();
      if (total === 0) return undefined;
      let r = Math.random() * total;
      for (const t of targets) {
        if (t === skip || !usable(t, exclude)) continue;
        r -= t.effectiveWeight();
        if (r < 0) return t;
      }
      return undefined;
    };
    return {
      pick(_input, exclude) {
        const a = draw(exclude, undefined);
        if (a === undefined) return undefined;
        const b = draw(exclude, a);
        if (b === undefined) return a;
        return b.active / b.effectiveWeight() < a.active / a.effectiveWeight() ? b : a;
      },
    };
  },
};
