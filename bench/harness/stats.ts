/**
 * Latency statistics of the end-to-end benchmark: percentiles by the nearest-rank method (the
 * value of a real request, never an interpolation between two), throughput over a measured window.
 */

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
  readonly max: number;
}

/**
 * The p-th percentile (0 < p ≤ 100) of `sorted` (ascending) by nearest rank: the smallest value
 * such that at least p % of the values are less than or equal to it.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty sample');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${String(p)} is not in (0, 100]`);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(values: readonly number[]): LatencySummary {
  if (values.length === 0) throw new RangeError('no values to summarize');
  for (const v of values) {
    if (!Number.isFinite(v)) throw new RangeError(`not a finite latency: ${String(v)}`);
  }
  const sorted = [...values].sort((a, b) => a - b);
  const total = sorted.reduce((sum, v) => sum + v, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: total / sorted.length,
    max: sorted[sorted.length - 1]!,
  };
}

/** Completed requests per second over a window of `elapsedMs`. */
export function throughput(completed: number, elapsedMs: number): number {
  if (!(elapsedMs > 0)) throw new RangeError('the measured window must be longer than 0 ms');
  return (completed * 1000) / elapsedMs;
}

/** The median of `values` (mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty sample');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
