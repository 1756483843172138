import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RESTART_POLICY, RestartPolicy } from './restart-policy.js';

/** A policy on a clock the test moves by hand. */
function clocked(options: ConstructorParameters<typeof RestartPolicy>[0] = {}): {
  policy: RestartPolicy;
  advance: (ms: number) => void;
} {
  let now = 1_000_000;
  return {
    policy: new RestartPolicy(options, () => now),
    advance: (ms) => {
      now += ms;
    },
  };
}

describe('restart back-off policy', () => {
  it('doubles the delay from 0.5 s up to 30 s for failures in a row, then gives up', () => {
    const { policy } = clocked({ maxRapidRestarts: 9 });
    policy.serving();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      const decision = policy.failed();
      expect(decision).toMatchObject({ action: 'restart', failures: i + 1 });
      if (decision.action === 'restart') delays.push(decision.delayMs);
      policy.serving(); // restarted, died again at once
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(policy.failed()).toEqual({ action: 'give-up', failures: 10 });
  });

  it('counts failed restarts (never serving) as failures in a row', () => {
    const { policy } = clocked({ maxRapidRestarts: 2 });
    policy.serving();
    expect(policy.failed()).toMatchObject({ action: 'restart', delayMs: 500 });
    expect(policy.failed()).toMatchObject({ action: 'restart', delayMs: 1000 });
    expect(policy.failed()).toMatchObject({ action: 'give-up', failures: 3 });
  });

  it('resets the count and the delay after a stable run', () => {
    const { policy, advance } = clocked({ stableAfterMs: 60_000, maxRapidRestarts: 3 });
    policy.serving();
    policy.failed();
    policy.serving();
    policy.failed();
    policy.serving();
    expect(policy.failures).toBe(2);
    advance(60_000);
    expect(policy.failed()).toEqual({ action: 'restart', delayMs: 500, failures: 1 });
  });

  it('does not reset after a run shorter than the stable period', () => {
    const { policy, advance } = clocked({ stableAfterMs: 60_000, maxRapidRestarts: 3 });
    policy.serving();
    policy.failed();
    policy.serving();
    advance(59_999);
    expect(policy.failed()).toEqual({ action: 'restart', delayMs: 1000, failures: 2 });
  });

  it('never restarts with maxRapidRestarts 0', () => {
    const { policy } = clocked({ maxRapidRestarts: 0 });
    policy.serving();
    expect(policy.failed()).toEqual({ action: 'give-up', failures: 1 });
  });

  it('has the documented defaults', () => {
    expect(DEFAULT_RESTART_POLICY).toEqual({
      initialDelayMs: 500,
      maxDelayMs: 30_000,
      stableAfterMs: 60_000,
      maxRapidRestarts: 5,
    });
  });

  it('refuses nonsensical settings', () => {
    for (const options of [
      { initialDelayMs: 0 },
      { initialDelayMs: -1 },
      { initialDelayMs: Number.NaN },
      { initialDelayMs: 1000, maxDelayMs: 999 },
      { stableAfterMs: -1 },
      { maxRapidRestarts: -1 },
      { maxRapidRestarts: 1.5 },
    ]) {
      expect(() => new RestartPolicy(options)).toThrow(RangeError);
    }
  });

  it('any failure sequence: delays stay within bounds, never shrink while failing, and it gives up exactly past the limit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 40 }),
        (initialDelayMs, extra, maxRapidRestarts, runs) => {
          const maxDelayMs = initialDelayMs + extra;
          const { policy, advance } = clocked({
            initialDelayMs,
            maxDelayMs,
            stableAfterMs: 1_000_000,
            maxRapidRestarts,
          });
          let previous = 0;
          for (const [index, run] of runs.entries()) {
            policy.serving();
            advance(run);
            const decision = policy.failed();
            expect(decision.failures).toBe(index + 1);
            if (index + 1 > maxRapidRestarts) {
              expect(decision.action).toBe('give-up');
              return;
            }
            if (decision.action !== 'restart') throw new Error('gave up too early');
            expect(decision.delayMs).toBeGreaterThanOrEqual(Math.max(initialDelayMs, previous));
            expect(decision.delayMs).toBeLessThanOrEqual(maxDelayMs);
            previous = decision.delayMs;
          }
        },
      ),
    );
  });
});
