import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
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
  });

  it('over any schedule, grants at most burst + rate × elapsed seconds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 200 }),
        (rate, steps) => {
          let now = 0;
          const bucket = new TokenBucket(rate, () => now);
          let granted = 0;
          for (const step of steps) {
            now += step;
            if (bucket.take()) granted++;
          }
          expect(granted).toBeLessThanOrEqual(rate + Math.floor((rate * now) / 1000) + 1);
        },
      ),
    );
  });
});
