import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('allows a burst of `rate` calls, then refuses until time passes', () => {
    let now = 1_000;
    const bucket = new TokenBucket(3, () => now);
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true]);
    expect(bucket.take()).toBe(false);
    expect(bucket.retryAfterSeconds()).toBe(1);
    now += 340;
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    // Refill is continuous: 0.02 + 0.326 s × 3/s is just short of a token, one more ms is not.
    now += 326;
    expect(bucket.take()).toBe(false);
    now += 1;
    expect(bucket.take()).toBe(true);
  });

  it('never holds more than the burst, however long it idled', () => {
    let now = 0;
    const bucket = new TokenBucket(2, () => now);
    now += 3_600_000;
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, false]);
  });

  it('a clock that goes backwards adds no tokens', () => {
    let now = 10_000;
    const bucket = new TokenBucket(1, () => now);
    expect(bucket.take()).toBe(true);
    now -= 5_000;
    expect(bucket.take()).toBe(false);
    // Nor does the step back get repaid: refill restarts from the earlier reading.
    now += 999;
    expect(bucket.take()).toBe(false);
    now += 1;
    expect(bucket.take()).toBe(true);
  });

  it.each([0, 0.5, -1, Number.NaN, Number.POSITIVE_INFINITY])('refuses a rate of %s', (rate) => {
    expect(() => new TokenBucket(rate, () => 0)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }) as TresorError,
    );
  });

  /** A bucket driven through a random schedule of calls (milliseconds between them) on a fake clock. */
  const schedules = fc.record({
    rate: fc.integer({ min: 1, max: 50 }),
    steps: fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 200 }),
  });
  const replay = ({ rate, steps }: { rate: number; steps: number[] }) => {
    const clock = { now: 0 };
    const bucket = new TokenBucket(rate, () => clock.now);
    let admitted = 0;
    for (const step of steps) {
      clock.now += step;
      if (bucket.take()) admitted++;
    }
    return { bucket, clock, admitted };
  };

  it('over any schedule, admits at most capacity + rate × elapsed seconds', () => {
    fc.assert(
      fc.property(schedules, (schedule) => {
        const { clock, admitted } = replay(schedule);
        // Capacity is `rate`; the 1e-9 absorbs floating-point rounding of the refill sum.
        expect(admitted).toBeLessThanOrEqual(schedule.rate + (schedule.rate * clock.now) / 1000 + 1e-9);
      }),
    );
  });

  it('after any schedule, one idle second brings back the whole burst and no more', () => {
    fc.assert(
      fc.property(schedules, (schedule) => {
        const { bucket, clock } = replay(schedule);
        clock.now += 1_000;
        for (let i = 0; i < schedule.rate; i++) expect(bucket.take()).toBe(true);
        expect(bucket.take()).toBe(false);
      }),
    );
  });
});
