// A balancer is built once per set of targets (when a Plan is compiled) and asked per request.
import type { Target } from '../target.ts';

/** What a balancer may look at to choose. */
export interface PickInput {
  clientIp: string;
  /** The value consistentHash hashes (from the upstream's hashKey), or undefined to hash the path. */
  hashValue: string | undefined;
  path: string;
}

export interface Balancer {
  /** An available target not in `exclude`, or undefined when there is none. */
  pick(input: PickInput, exclude?: ReadonlySet<Target>): Target | undefined;
}

export interface BalancerKind {
  create(targets: readonly Target[]): Balancer;
}

export function usable(t: Target, exclude: ReadonlySet<Target> | undefined): boolean {
  return t.available && (exclude === undefined || !exclude.has(t));
}
