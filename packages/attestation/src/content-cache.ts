/**
 * A small least-recently-used memo for verification work that depends only on input bytes: parsed
 * endorsements with their chain signature checks, examined collateral, imported keys. An entry is
 * served only when every byte of its inputs equals the private copy it was made from, so a changed
 * byte (even in a buffer the caller reuses) is a new entry, never a stale verdict. Time-dependent
 * checks are never cached here: they run at each verification's `now`.
 *
 * Lookups are cheap because they are frequent (every verification of a report from a known
 * platform): a fingerprint of a few sampled bytes picks a bucket, then one word-wise comparison with
 * the copy confirms the hit (about 4 µs for 20 KB of TDX collateral). Certificates, CRLs and collateral are public, so the comparison need
 * not be constant-time (unlike `equalBytes`, which is for secrets). A bucket never holds more than
 * `capacity` entries, so inputs crafted to share a fingerprint cost at most that many comparisons.
 */

/** The inputs an entry is keyed by; `undefined` marks an absent optional input. */
export type ContentKey = readonly (Uint8Array | undefined)[];

interface Entry<V> {
  readonly fingerprint: number;
  readonly parts: ContentKey;
  readonly value: V;
}

export class ContentCache<V> {
  readonly #buckets = new Map<number, Entry<V>[]>();
  /** Every entry, least recently used first (a Set keeps insertion order). */
  readonly #recency = new Set<Entry<V>>();
  readonly #capacity: number;

  /** `capacity` entries at most; 0 keeps nothing, so every lookup creates. */
  constructor(capacity: number) {
    this.#capacity = Math.max(0, Math.floor(capacity));
  }

  get size(): number {
    return this.#recency.size;
  }

  /** The value made from exactly these bytes before, or a new one from `create` (which may throw). */
  getOrCreate(key: ContentKey, create: () => V): V {
    const fingerprint = fingerprintOf(key);
    const bucket = this.#buckets.get(fingerprint);
    if (bucket !== undefined) {
      for (const entry of bucket) {
        if (sameKey(entry.parts, key)) {
          this.#recency.delete(entry);
          this.#recency.add(entry);
          return entry.value;
        }
      }
    }
    const value = create();
    if (this.#capacity > 0) {
      this.#insert({ fingerprint, parts: key.map((p) => (p === undefined ? p : alignedCopy(p))), value });
    }
    return value;
  }

  /**
   * As `getOrCreate` for asynchronous work; a rejected promise is dropped from the cache, so a
   * failure is never remembered.
   */
  remember<T>(this: ContentCache<Promise<T>>, key: ContentKey, create: () => Promise<T>): Promise<T> {
    return this.getOrCreate(key, () => {
      const value = create();
      value.catch(() => {
        for (const entry of this.#recency) if (entry.value === value) this.#remove(entry);
      });
      return value;
    });
  }

  #insert(entry: Entry<V>): void {
    const bucket = this.#buckets.get(entry.fingerprint);
    if (bucket === undefined) this.#buckets.set(entry.fingerprint, [entry]);
    else bucket.push(entry);
    this.#recency.add(entry);
    if (this.#recency.size > this.#capacity) {
      const oldest = this.#recency.values().next();
      if (oldest.done !== true) this.#remove(oldest.value);
    }
  }

  #remove(entry: Entry<V>): void {
    this.#recency.delete(entry);
    const bucket = this.#buckets.get(entry.fingerprint);
    if (bucket === undefined) return;
    const rest = bucket.filter((e) => e !== entry);
    if (rest.length === 0) this.#buckets.delete(entry.fingerprint);
    else this.#buckets.set(entry.fingerprint, rest);
  }
}

/** Sampled positions per input: spread over PEM text, JSON and DER, so equal-length inputs differ. */
const SAMPLES = 24;

/** FNV-1a over each input's presence, length and sampled bytes: a bucket index, not a security measure. */
function fingerprintOf(key: ContentKey): number {
  let hash = 0x811c9dc5;
  for (const part of key) {
    const length = part === undefined ? -1 : part.length;
    hash = Math.imul(hash ^ (length & 0xffff), 0x01000193);
    hash = Math.imul(hash ^ (length >>> 16), 0x01000193);
    if (part === undefined || part.length === 0) continue;
    const step = Math.max(1, Math.floor(part.length / SAMPLES));
    for (let i = part.length - 1; i >= 0 && i >= part.length - SAMPLES * step; i -= step) {
      hash = Math.imul(hash ^ part[i]!, 0x01000193);
    }
  }
  return hash >>> 0;
}

function sameKey(a: ContentKey, b: ContentKey): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined ? x !== y : !sameContent(x, y)) return false;
  }
  return true;
}

/**
 * A private copy of `bytes` at the same offset modulo 8 as the original, so that later comparisons
 * with inputs laid out like it (a PCK chain inside a quote sits at a fixed offset) take the fast path.
 */
function alignedCopy(bytes: Uint8Array): Uint8Array {
  const shift = bytes.byteOffset & 7;
  const copy = new Uint8Array(new ArrayBuffer(bytes.length + shift), shift, bytes.length);
  copy.set(bytes);
  return copy;
}

/**
 * Byte equality, eight bytes at a time where both views share their alignment (JavaScript has no
 * memcmp; a Float64Array loop is the fastest portable one, about 4x a byte loop). Equal doubles
 * have equal bytes except +0/-0 and NaNs with different payloads, so those words are compared
 * byte by byte.
 */
export function sameContent(a: Uint8Array, b: Uint8Array): boolean {
  const length = a.length;
  if (length !== b.length) return false;
  let i = 0;
  if ((a.byteOffset & 7) === (b.byteOffset & 7)) {
    const head = Math.min(length, (8 - (a.byteOffset & 7)) & 7);
    for (; i < head; i++) if (a[i] !== b[i]) return false;
    const words = (length - head) >>> 3;
    if (words > 0) {
      const x = new Float64Array(a.buffer, a.byteOffset + head, words);
      const y = new Float64Array(b.buffer, b.byteOffset + head, words);
      for (let w = 0; w < words; w++) {
        const p = x[w]!;
        if ((p !== y[w] || p === 0) && !sameBytes(a, b, head + 8 * w, 8)) return false;
      }
    }
    i = head + 8 * words;
  }
  return sameBytes(a, b, i, length - i);
}

function sameBytes(a: Uint8Array, b: Uint8Array, from: number, count: number): boolean {
  for (let i = from; i < from + count; i++) if (a[i] !== b[i]) return false;
  return true;
}
