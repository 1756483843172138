import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContentCache, sameContent } from './content-cache.js';

/** `bytes` copied into a fresh buffer at `offset`, so views of any alignment can be compared. */
function at(bytes: Uint8Array, offset: number): Uint8Array {
  const out = new Uint8Array(bytes.length + offset).subarray(offset);
  out.set(bytes);
  return out;
}

/** Eight bytes that are -0, +0 and two NaNs with different payloads as float64 (little-endian). */
const MINUS_ZERO = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0x80);
const PLUS_ZERO = new Uint8Array(8);
const NAN_A = Uint8Array.of(1, 0, 0, 0, 0, 0, 0xf8, 0x7f);
const NAN_B = Uint8Array.of(2, 0, 0, 0, 0, 0, 0xf8, 0x7f);

describe('sameContent', () => {
  it('is byte equality, whatever the alignment of either view', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.nat({ max: 9 }),
        fc.nat({ max: 9 }),
        fc.option(fc.nat(), { nil: undefined }),
        (bytes, offsetA, offsetB, change) => {
          const other = Uint8Array.from(bytes);
          if (change !== undefined && other.length > 0) other[change % other.length]! ^= 1 + (change % 255);
          const expected = bytes.every((b, i) => b === other[i]);
          return sameContent(at(bytes, offsetA), at(other, offsetB)) === expected;
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('tells apart words that are equal as doubles but not as bytes (+0/-0) and NaNs with other payloads', () => {
    for (const offset of [0, 3, 8]) {
      expect(sameContent(at(MINUS_ZERO, offset), at(PLUS_ZERO, offset))).toBe(false);
      expect(sameContent(at(NAN_A, offset), at(NAN_B, offset))).toBe(false);
      expect(sameContent(at(NAN_A, offset), at(NAN_A, offset))).toBe(true);
      expect(sameContent(at(MINUS_ZERO, offset), at(MINUS_ZERO, offset))).toBe(true);
    }
    expect(sameContent(new Uint8Array(3), new Uint8Array(4))).toBe(false);
  });
});

describe('ContentCache', () => {
  it('serves an entry only for byte-identical inputs, including a reused buffer changed in place', () => {
    const cache = new ContentCache<number>(8);
    const input = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9);
    let made = 0;
    const make = (): number => ++made;
    expect(cache.getOrCreate([input], make)).toBe(1);
    expect(cache.getOrCreate([Uint8Array.from(input)], make)).toBe(1);
    input[4] = 0;
    expect(cache.getOrCreate([input], make)).toBe(2);
    expect(cache.getOrCreate([input, undefined], make)).toBe(3);
    expect(cache.getOrCreate([input, new Uint8Array(0)], make)).toBe(4);
    expect(cache.size).toBe(4);
  });

  it('keeps inputs that share a fingerprint apart', () => {
    // Same length and the same bytes at every sampled position from the end: only byte 0 differs
    // in a 1000-byte input sampled every 41 bytes.
    const a = new Uint8Array(1000).fill(7);
    const b = Uint8Array.from(a);
    b[1] = 8;
    const cache = new ContentCache<string>(8);
    expect(cache.getOrCreate([a], () => 'a')).toBe('a');
    expect(cache.getOrCreate([b], () => 'b')).toBe('b');
    expect(cache.getOrCreate([a], () => 'again')).toBe('a');
    expect(cache.getOrCreate([b], () => 'again')).toBe('b');
  });

  it('evicts the least recently used entry beyond its capacity, and keeps nothing at capacity 0', () => {
    const cache = new ContentCache<number>(2);
    const key = (n: number): Uint8Array[] => [Uint8Array.of(n)];
    cache.getOrCreate(key(1), () => 1);
    cache.getOrCreate(key(2), () => 2);
    cache.getOrCreate(key(1), () => -1); // 1 is now the most recent
    cache.getOrCreate(key(3), () => 3); // evicts 2
    expect(cache.size).toBe(2);
    expect(cache.getOrCreate(key(1), () => -1)).toBe(1);
    expect(cache.getOrCreate(key(2), () => 22)).toBe(22);
    const none = new ContentCache<number>(0);
    none.getOrCreate(key(1), () => 1);
    expect(none.getOrCreate(key(1), () => 2)).toBe(2);
    expect(none.size).toBe(0);
  });

  it('remembers promises, but forgets a rejected one so a failure is retried', async () => {
    const cache = new ContentCache<Promise<number>>(4);
    const key = [Uint8Array.of(1)];
    await expect(cache.remember(key, () => Promise.reject(new Error('transient')))).rejects.toThrow();
    await Promise.resolve();
    expect(cache.size).toBe(0);
    expect(await cache.remember(key, () => Promise.resolve(5))).toBe(5);
    expect(await cache.remember(key, () => Promise.resolve(6))).toBe(5);
  });

  it('does not cache a value whose creation throws', () => {
    const cache = new ContentCache<number>(4);
    const key = [Uint8Array.of(1)];
    expect(() =>
      cache.getOrCreate(key, () => {
        throw new Error('unparseable');
      }),
    ).toThrow('unparseable');
    expect(cache.size).toBe(0);
  });

  it('agrees with a plain map keyed by content, under any sequence of lookups', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 60 }), (inputs) => {
        const cache = new ContentCache<string>(1000);
        const reference = new Map<string, string>();
        return inputs.every((input, i) => {
          const text = input.join(',');
          const expected = reference.get(text) ?? `v${i}`;
          reference.set(text, expected);
          return cache.getOrCreate([input], () => `v${i}`) === expected;
        });
      }),
      { numRuns: 1000 },
    );
  });
});
