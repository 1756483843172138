/**
 * When to restart a supervised upstream server that died, and when to stop trying: exponential
 * back-off (`initialDelayMs`, doubled per failure up to `maxDelayMs`) over the failures since the
 * child last ran stably (`stableAfterMs` serving without dying resets the count), and a give-up
 * once more than `maxRapidRestarts` restarts in a row did not last (the engine is broken, not
 * unlucky: restarting it forever would only burn key releases and decryptions).
 *
 * Pure: the clock is injected, so the policy is tested without waiting.
 */

export interface RestartPolicyOptions {
  /** Delay before the first restart after a stable run; default 500 ms. */
  readonly initialDelayMs: number;
  /** Ceiling of the doubled delay; default 30 s. */
  readonly maxDelayMs: number;
  /** A child serving this long without dying has the failure count reset; default 60 s. */
  readonly stableAfterMs: number;
  /** Restarts in a row without a stable run before giving up; 0 never restarts; default 5. */
  readonly maxRapidRestarts: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  stableAfterMs: 60_000,
  maxRapidRestarts: 5,
};

export type RestartDecision =
  | {
      readonly action: 'restart';
      /** Wait this long before starting the child again. */
      readonly delayMs: number;
      /** Failures in a row without a stable run, this one included (1 for the first). */
      readonly failures: number;
    }
  | { readonly action: 'give-up'; readonly failures: number };

export class RestartPolicy {
  readonly #options: RestartPolicyOptions;
  readonly #now: () => number;
  #failures = 0;
  #servingSince: number | undefined;

  constructor(options: Partial<RestartPolicyOptions> = {}, now: () => number = Date.now) {
    this.#options = { ...DEFAULT_RESTART_POLICY, ...options };
    const { initialDelayMs, maxDelayMs, stableAfterMs, maxRapidRestarts } = this.#options;
    if (
      !(initialDelayMs > 0) ||
      !(maxDelayMs >= initialDelayMs) ||
      !(stableAfterMs >= 0) ||
      !Number.isInteger(maxRapidRestarts) ||
      maxRapidRestarts < 0
    ) {
      throw new RangeError(
        'restart policy: need 0 < initialDelayMs <= maxDelayMs, stableAfterMs >= 0 and an integer maxRapidRestarts >= 0',
      );
    }
    this.#now = now;
  }

  /** Failures in a row since the last stable run. */
  get failures(): number {
    return this.#failures;
  }

  /** The child is serving (started, or restarted and answering again). */
  serving(): void {
    this.#servingSince = this.#now();
  }

  /**
   * The child died while serving, or a restart did not get it serving: restart after the
   * returned delay, or give up.
   */
  failed(): RestartDecision {
    const since = this.#servingSince;
    this.#servingSince = undefined;
    if (since !== undefined && this.#now() - since >= this.#options.stableAfterMs) this.#failures = 0;
    this.#failures++;
    if (this.#failures > this.#options.maxRapidRestarts) {
      return { action: 'give-up', failures: this.#failures };
    }
    const delayMs = Math.min(
      this.#options.maxDelayMs,
      this.#options.initialDelayMs * 2 ** Math.min(this.#failures - 1, 52),
    );
    return { action: 'restart', delayMs, failures: this.#failures };
  }
}
