/**
 * A small least-recently-used memo for verification work that depends only on its input bytes
 * (certificate chain signatures, collateral signatures, imported keys). Keys are the full input
 * (as a string), never a truncated digest, so two inputs can never share an entry. Time-dependent
 * checks are never cached: they run at each verification's `now`.
 */
export class BoundedCache<V> {
  readonly #entries = new Map<string, V>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  getOrCreate(key: string, create: () => V): V {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      // Re-insert so Map order tracks recency; the first key is then the least recently used.
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit;
    }
    const value = create();
    if (this.#capacity <= 0) return value;
    this.#entries.set(key, value);
    if (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    return value;
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}

const LATIN1 = new TextDecoder('latin1');

/** The bytes as a string key, one distinct character per byte value (lossless, unlike UTF-8 decoding). */
export function bytesKey(bytes: Uint8Array): string {
  return LATIN1.decode(bytes);
}
