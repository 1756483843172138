import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_BUCKETS,
  aggregateUsage,
  bucketSizeFor,
  percentile,
  type UsageRecordView,
} from './usage-aggregation.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
let n = 0;
function rec(over: Partial<UsageRecordView> & { at: number }): UsageRecordView {
  const { at, ...rest } = over;
  return {
    id: `r${n++}`,
    apiKeyId: 'k1',
    model: 'tresor-demo',
    promptTokens: 10,
    completionTokens: 5,
    latencyMs: 100,
    status: 200,
    time: new Date(at).toISOString(),
    ...rest,
  };
}

describe('aggregateUsage', () => {
  it('buckets per minute per model: requests, tokens, errors, latency percentiles', () => {
    const records = [
      rec({ at: T0 + 1_000, latencyMs: 100 }),
      rec({ at: T0 + 2_000, latencyMs: 300, status: 500 }),
      rec({ at: T0 + 61_000, latencyMs: 50, model: 'other' }),
      rec({ at: T0 + 3 * 60_000, latencyMs: 200, status: 429 }),
    ];
    const agg = aggregateUsage(records);
    expect(agg.bucketMs).toBe(60_000);
    expect(agg.starts).toEqual([T0, T0 + 60_000, T0 + 120_000, T0 + 180_000]);
    expect(agg.series.map((s) => s.name)).toEqual(['other', 'tresor-demo']);
    const demo = agg.series[1]!;
    expect(demo.buckets.map((b) => b.requests)).toEqual([2, 0, 0, 1]);
    expect(demo.buckets.map((b) => b.errors)).toEqual([1, 0, 0, 1]);
    expect(demo.buckets[0]).toMatchObject({
      promptTokens: 20,
      completionTokens: 10,
      p50: 100,
      p95: 300,
      p99: 300,
    });
    expect(demo.buckets[1]).toMatchObject({ requests: 0, p50: null });
    expect(demo.totals).toEqual({ requests: 3, tokens: 45, errors: 2 });
    expect(agg.series[0]!.buckets.map((b) => b.requests)).toEqual([0, 1, 0, 0]);
  });

  it('groups per API key when asked', () => {
    const agg = aggregateUsage([rec({ at: T0, apiKeyId: 'b' }), rec({ at: T0, apiKeyId: 'a' })], 'apiKey');
    expect(agg.series.map((s) => s.name)).toEqual(['a', 'b']);
  });

  it('charts a record whose model could not be decrypted under its own name', () => {
    expect(aggregateUsage([rec({ at: T0, model: null })]).series[0]!.name).toBe('(model unreadable)');
  });

  it('skips (and counts) records with an unreadable time or negative counts', () => {
    const agg = aggregateUsage([
      rec({ at: T0 }),
      { ...rec({ at: T0 }), time: 'yesterday' },
      rec({ at: T0, promptTokens: -1 }),
      rec({ at: T0, latencyMs: Number.NaN }),
      rec({ at: T0, status: 200.5 }),
    ]);
    expect(agg.skipped).toBe(4);
    expect(agg.series[0]!.totals.requests).toBe(1);
  });

  it('is empty without records', () => {
    expect(aggregateUsage([])).toMatchObject({ starts: [], series: [], skipped: 0 });
  });

  it('widens buckets for long ranges', () => {
    expect(bucketSizeFor(T0, T0)).toBe(60_000);
    expect(bucketSizeFor(T0, T0 + 3 * 3_600_000)).toBe(5 * 60_000);
    expect(bucketSizeFor(T0, T0 + 7 * 86_400_000)).toBe(6 * 3_600_000);
    expect(bucketSizeFor(T0, T0 + 400 * 86_400_000)).toBe(4 * 86_400_000);
  });

  it('counts the alignment of the first bucket (found by the property below)', () => {
    // 30 days from just after midnight: 6-hour buckets would need 121, one more than allowed.
    const first = Date.parse('2026-03-01T00:00:00.001Z');
    const last = first + 30 * 86_400_000 - 1;
    expect(bucketSizeFor(first, last)).toBe(86_400_000);
    const agg = aggregateUsage([rec({ at: first }), rec({ at: last })]);
    expect(agg.starts.length).toBeLessThanOrEqual(MAX_BUCKETS);
  });
});

describe('percentile', () => {
  it('is nearest-rank', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 95)).toBe(4);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNull();
  });
});

const record = fc.record({
  offset: fc.integer({ min: 0, max: 30 * 86_400_000 }),
  model: fc.constantFrom('a', 'b', 'c', null),
  apiKeyId: fc.constantFrom('k1', 'k2'),
  promptTokens: fc.nat(10_000),
  completionTokens: fc.nat(10_000),
  latencyMs: fc.nat(60_000),
  status: fc.constantFrom(200, 400, 401, 429, 500, 502),
});

describe('aggregateUsage: properties', () => {
  it('conserves requests, tokens and errors, and keeps percentiles ordered within the bucket', () => {
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 200 }),
        fc.constantFrom('model' as const, 'apiKey' as const),
        (rs, by) => {
          const records = rs.map(({ offset, ...r }) => rec({ at: T0 + offset, ...r }));
          const agg = aggregateUsage(records, by);
          const sum = (f: (s: (typeof agg.series)[number]) => number) =>
            agg.series.reduce((a, s) => a + f(s), 0);
          expect(sum((s) => s.totals.requests)).toBe(records.length);
          expect(sum((s) => s.totals.tokens)).toBe(
            records.reduce((a, r) => a + r.promptTokens + r.completionTokens, 0),
          );
          expect(sum((s) => s.totals.errors)).toBe(records.filter((r) => r.status >= 400).length);
          expect(agg.starts.length).toBeLessThanOrEqual(MAX_BUCKETS);
          for (const s of agg.series) {
            expect(s.buckets.length).toBe(agg.starts.length);
            for (const b of s.buckets) {
              if (b.requests === 0) expect(b.p50).toBeNull();
              else expect(b.p50! <= b.p95! && b.p95! <= b.p99!).toBe(true);
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
