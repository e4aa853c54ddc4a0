// Status patterns as the config writes them (`200`, `200-299`, `2xx`), compiled once into a test:
// the statuses a health check expects, the ones outlier detection counts as failures, the ones
// retried.

/** `200`, `200-299`, `2xx` → a test on a status. */
export function statusMatcher(patterns: readonly string[]): (status: number) => boolean {
  const ranges = patterns.map((p) => {
    if (/^[1-5]xx$/.test(p)) return [Number(p[0]) * 100, Number(p[0]) * 100 + 99];
    const [a, b] = p.split('-').map(Number);
    return [a, b ?? a];
  });
  if (ranges.length === 1) {
    const [a, b] = ranges[0];
    return (s) => s >= a && s <= b;
  }
  return (s) => ranges.some(([a, b]) => s >= a && s <= b);
}
