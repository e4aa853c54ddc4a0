// The cost of the live figures alone: Stats.record for one request (route, target, method and status
// class counters, two histograms, two per-second windows), measured in a loop without any I/O.
//   node bench/stats-micro.ts

import { Stats } from '../src/observe/stats.ts';
import type { RequestContext } from '../src/pipeline/context.ts';

const stats = new Stats();
const ctx = {
  route: { name: 'all', upstream: { name: 'u' } },
  target: { id: 'http://127.0.0.1:1' },
  start: 0,
  status: 200,
  error: undefined,
  req: { method: 'GET', headers: {} },
  bytesIn: 0,
  bytesOut: 100,
  upstreamMs: 1.2,
  id: 'x',
  path: '/',
} as unknown as RequestContext;
const N = 2_000_000;
for (let i = 0; i < 100_000; i++) stats.record(ctx, performance.now(), null); // warm-up
const t0 = performance.now();
for (let i = 0; i < N; i++) stats.record(ctx, performance.now(), null);
const us = ((performance.now() - t0) * 1000) / N;
process.stdout.write(
  `Stats.record: ${us.toFixed(3)} µs per request (${(((us * 10_000) / 1_000_000) * 100).toFixed(2)}% of one core at 10,000 req/s)\n`,
);
