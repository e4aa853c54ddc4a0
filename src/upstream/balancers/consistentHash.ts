// Consistent hashing on a ring (ketama style) over a configurable key: a header, a cookie, a query
// parameter, the client address or the path. Each target owns 100 points per unit of weight, so
// adding or removing one target moves only about 1/n of the keys. An unavailable owner hands its
// keys to the next target clockwise.
import type { Target } from '../target.ts';
import { hash32 } from './hash.ts';
import { type Balancer, type BalancerKind, usable } from './types.ts';

const POINTS_PER_WEIGHT = 100;

export const consistentHash: BalancerKind = {
  create(targets: readonly Target[]): Balancer {
    const points: { at: number; target: Target }[] = [];
    for (const t of targets) {
      for (let i = 0; i < POINTS_PER_WEIGHT * t.weight; i++)
        points.push({ at: hash32(`${t.id}#${i}`), target: t });
    }
    points.sort((a, b) => a.at - b.at);
    const ring = Uint32Array.from(points, (p) => p.at);
    const owners = points.map((p) => p.target);
    return {
      pick(input, exclude) {
        const h = hash32(input.hashValue ?? input.path);
        // First point at or after h (binary search), wrapping around.
        let lo = 0;
        let hi = ring.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (ring[mid] < h) lo = mid + 1;
          else hi = mid;
        }
        for (let i = 0; i < owners.length; i++) {
          const t = owners[(lo + i) % owners.length];
          if (usable(t, exclude)) return t;
        }
        return undefined;
      },
    };
  },
};
