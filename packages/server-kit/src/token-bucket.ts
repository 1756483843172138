import { TresorError } from '@tresor/protocol';

/**
 * A token bucket refilled continuously at `ratePerSecond` up to a capacity (burst) of
 * `ratePerSecond` tokens: a constant-time check, cheap enough to sit in front of work that is
 * expensive per call (evidence signing, attestation bundles that ask every replica for fresh
 * evidence). Over any interval it admits at most capacity + rate × elapsed seconds calls.
 * The clock is injected (milliseconds); a clock that steps backwards adds no tokens.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  /**
   * @throws TresorError CONFIG_INVALID when `ratePerSecond` is below 1 or not finite: the capacity
   * is the rate, so a bucket slower than one per second could never hold a whole token.
   */
  constructor(ratePerSecond: number, now: () => number) {
    if (!Number.isFinite(ratePerSecond) || ratePerSecond < 1) {
      throw new TresorError(
        'CONFIG_INVALID',
        `a rate limit must be at least 1 request per second, not ${String(ratePerSecond)}`,
      );
    }
    this.#rate = ratePerSecond;
    this.#now = now;
    this.#tokens = ratePerSecond;
    this.#last = now();
  }

  /** Takes one token; false when none is left (the caller refuses with RATE_LIMITED). */
  take(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.#rate, this.#tokens + (Math.max(0, now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whole seconds until a token is back, at least 1 (for Retry-After). */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#rate));
  }
}
