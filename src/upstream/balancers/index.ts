// The `loadBalancer` value → balancer table.
import type { BalancerName } from '../../config/schema.ts';
import { consistentHash } from './consistentHash.ts';
import { ipHash } from './ipHash.ts';
import { leastConnections } from './leastConnections.ts';
import { random2 } from './random2.ts';
import { roundRobin } from './roundRobin.ts';
import type { BalancerKind } from './types.ts';

export const balancers = { roundRobin, leastConnections, ipHash, consistentHash, random2 } satisfies Record<
  BalancerName,
  BalancerKind
>;
