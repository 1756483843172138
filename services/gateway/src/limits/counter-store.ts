/**
 * Fixed-window counters, the one primitive rate limits and token quotas need. In memory for a
 * single gateway replica, Redis when several share the limits; both run one conformance suite
 * (counter-store-conformance.ts). Windows are aligned to multiples of `windowMs` since the epoch,
 * so every replica (with synchronised clocks) counts into the same window.
 */
export interface CounterStore {
  /** Adds `amount` (≥ 0) to `key`'s counter for the window holding `nowMs`; returns the new total. */
  increment(key: string, amount: number, windowMs: number, nowMs: number): Promise<number>;
  /** The total counted for `key` in the window holding `nowMs` (0 when none). */
  read(key: string, windowMs: number, nowMs: number): Promise<number>;
  close(): Promise<void>;
}

/** The start of the window holding `nowMs`, and when it ends. */
export function windowOf(
  windowMs: number,
  nowMs: number,
): { readonly index: number; readonly endsAtMs: number } {
  const index = Math.floor(nowMs / windowMs);
  return { index, endsAtMs: (index + 1) * windowMs };
}

const SWEEP_INTERVAL_MS = 60_000;

/** Counters in this process; expired windows are dropped as new ones are written. */
export class MemoryCounterStore implements CounterStore {
  readonly #counters = new Map<string, { total: number; expiresAtMs: number }>();
  readonly #maxEntries: number;
  /** When the next sweep of expired windows is due: once a minute at most, as windows are written. */
  #nextSweepMs = -Infinity;

  constructor(maxEntries = 1_000_000) {
    this.#maxEntries = maxEntries;
  }

  increment(key: string, amount: number, windowMs: number, nowMs: number): Promise<number> {
    const { index, endsAtMs } = windowOf(windowMs, nowMs);
    const name = `${key}\u0000${windowMs}\u0000${index}`;
    const current = this.#counters.get(name);
    const total = (current?.total ?? 0) + amount;
    if (current === undefined && nowMs >= this.#nextSweepMs) {
      // Every key leaves one entry per window it counted in; without a sweep they stayed until the
      // store was full (two a minute per active API key, for days).
      this.#nextSweepMs = nowMs + SWEEP_INTERVAL_MS;
      this.#forgetExpired(nowMs);
    }
    if (current === undefined && this.#counters.size >= this.#maxEntries) this.#prune(nowMs);
    this.#counters.set(name, { total, expiresAtMs: endsAtMs });
    return Promise.resolve(total);
  }

  read(key: string, windowMs: number, nowMs: number): Promise<number> {
    const { index } = windowOf(windowMs, nowMs);
    return Promise.resolve(this.#counters.get(`${key}\u0000${windowMs}\u0000${index}`)?.total ?? 0);
  }

  close(): Promise<void> {
    this.#counters.clear();
    return Promise.resolve();
  }

  get size(): number {
    return this.#counters.size;
  }

  #forgetExpired(nowMs: number): void {
    for (const [name, entry] of this.#counters) if (entry.expiresAtMs <= nowMs) this.#counters.delete(name);
  }

  #prune(nowMs: number): void {
    this.#forgetExpired(nowMs);
    // Still full of live windows: drop the oldest half rather than grow without bound. Limits are
    // then counted low for those keys, never high: nobody is refused for someone else's traffic.
    if (this.#counters.size >= this.#maxEntries) {
      let drop = Math.ceil(this.#counters.size / 2);
      for (const name of this.#counters.keys()) {
        if (drop-- <= 0) break;
        this.#counters.delete(name);
      }
    }
  }
}
