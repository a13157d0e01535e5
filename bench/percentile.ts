/** p-th percentile (0–100) of `values`, nearest rank. A module of its own: the api load process needs it and nothing else of bench/support.ts (which loads RocksDB and the testkit). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}
