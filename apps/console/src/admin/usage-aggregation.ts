/**
 * Usage over time for the admin charts: the `usage` admin operation's records (minimal metadata:
 * key id, model, token counts, latency, status, time; never content) grouped into time buckets per
 * series (model, or API key), with requests, tokens, errors and latency percentiles. Pure.
 */

/** One record as the `usage` operation answers it. `model` is null when it could not be decrypted. */
export interface UsageRecordView {
  readonly id: string;
  readonly apiKeyId: string;
  readonly model: string | null;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly latencyMs: number;
  readonly status: number;
  /** ISO 8601. */
  readonly time: string;
}

export type SeriesBy = 'model' | 'apiKey';

export interface UsageBucket {
  /** Start of the bucket, ms since the epoch. */
  readonly start: number;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Answers with status 400 or above. */
  readonly errors: number;
  /** Nearest-rank percentiles of latency in ms; null for an empty bucket. */
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
}

export interface UsageSeries {
  readonly name: string;
  readonly buckets: readonly UsageBucket[];
  readonly totals: { readonly requests: number; readonly tokens: number; readonly errors: number };
}

export interface UsageAggregate {
  readonly bucketMs: number;
  /** Bucket starts, ascending, with no gaps between the first and last record. */
  readonly starts: readonly number[];
  readonly series: readonly UsageSeries[];
  /** Records that were not counted (unreadable time or counts), never silently. */
  readonly skipped: number;
}

const BUCKETS_MS = [60_000, 5 * 60_000, 15 * 60_000, 3_600_000, 6 * 3_600_000, 86_400_000];
/** A chart stays readable up to this many points per series. */
export const MAX_BUCKETS = 120;
const UNKNOWN_MODEL = '(model unreadable)';

/**
 * The smallest bucket size whose buckets, aligned to multiples of the size (so labels fall on whole
 * minutes, hours, days), cover [first, last] in at most MAX_BUCKETS buckets.
 */
export function bucketSizeFor(first: number, last: number): number {
  const fits = (size: number): boolean =>
    Math.floor(last / size) - Math.floor(first / size) + 1 <= MAX_BUCKETS;
  for (const size of BUCKETS_MS) if (fits(size)) return size;
  const day = 86_400_000;
  let days = Math.max(1, Math.ceil((last - first) / day / MAX_BUCKETS));
  while (!fits(days * day)) days++;
  return days * day;
}

/** Nearest-rank percentile (p in (0, 100]) of values; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? null;
}

function countable(n: unknown): n is number {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0;
}

export function aggregateUsage(
  records: readonly UsageRecordView[],
  by: SeriesBy = 'model',
  bucketMs?: number,
): UsageAggregate {
  const valid: { t: number; r: UsageRecordView }[] = [];
  let skipped = 0;
  for (const r of records) {
    const t = Date.parse(r.time);
    if (
      Number.isNaN(t) ||
      !countable(r.promptTokens) ||
      !countable(r.completionTokens) ||
      !countable(r.latencyMs) ||
      !Number.isInteger(r.status)
    ) {
      skipped++;
      continue;
    }
    valid.push({ t, r });
  }
  if (valid.length === 0) return { bucketMs: bucketMs ?? BUCKETS_MS[0]!, starts: [], series: [], skipped };
  const first = Math.min(...valid.map((v) => v.t));
  const last = Math.max(...valid.map((v) => v.t));
  const size = bucketMs ?? bucketSizeFor(first, last);
  const origin = Math.floor(first / size) * size;
  const count = Math.floor((last - origin) / size) + 1;
  const starts = Array.from({ length: count }, (_, i) => origin + i * size);

  const bySeries = new Map<string, { t: number; r: UsageRecordView }[][]>();
  for (const v of valid) {
    const name = by === 'model' ? (v.r.model ?? UNKNOWN_MODEL) : v.r.apiKeyId;
    let slots = bySeries.get(name);
    if (slots === undefined) {
      slots = starts.map(() => []);
      bySeries.set(name, slots);
    }
    slots[Math.floor((v.t - origin) / size)]!.push(v);
  }
  const series: UsageSeries[] = [...bySeries.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, slots]) => {
      const buckets = slots.map((slot, i): UsageBucket => {
        const latencies = slot.map((v) => v.r.latencyMs);
        return {
          start: starts[i]!,
          requests: slot.length,
          promptTokens: slot.reduce((s, v) => s + v.r.promptTokens, 0),
          completionTokens: slot.reduce((s, v) => s + v.r.completionTokens, 0),
          errors: slot.filter((v) => v.r.status >= 400).length,
          p50: percentile(latencies, 50),
          p95: percentile(latencies, 95),
          p99: percentile(latencies, 99),
        };
      });
      return {
        name,
        buckets,
        totals: {
          requests: buckets.reduce((s, b) => s + b.requests, 0),
          tokens: buckets.reduce((s, b) => s + b.promptTokens + b.completionTokens, 0),
          errors: buckets.reduce((s, b) => s + b.errors, 0),
        },
      };
    });
  return { bucketMs: size, starts, series, skipped };
}
