/**
 * Answers of a lookup kept for `ttlMs` (absent answers too), so a record read on every request is
 * read from the database once per `ttlMs` per key instead. A change (revocation, new limits) takes
 * effect everywhere within `ttlMs`, or at once where the changer calls {@link forget}. Bounded:
 * past `maxEntries` keys it starts over.
 */
export class ExpiringCache<V> {
  readonly #load: (key: string) => Promise<V>;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { value: V; until: number }>();

  constructor(load: (key: string) => Promise<V>, ttlMs: number, maxEntries = 100_000) {
    this.#load = load;
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  async get(key: string, nowMs: number): Promise<V> {
    const cached = this.#entries.get(key);
    if (cached !== undefined && cached.until > nowMs) return cached.value;
    const value = await this.#load(key);
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(key, { value, until: nowMs + this.#ttlMs });
    return value;
  }

  forget(key: string): void {
    this.#entries.delete(key);
  }
}
