/**
 * A token bucket refilled continuously at `ratePerSecond` up to a burst of `ratePerSecond`: a
 * constant-time check, cheap enough to sit in front of work that is expensive per call (the
 * attestation bundle signs fresh evidence and asks every replica for fresh evidence).
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(ratePerSecond: number, now: () => number) {
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

  /** Whole seconds until a token is back (for Retry-After). */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#rate));
  }
}
