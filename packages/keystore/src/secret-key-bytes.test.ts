import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SecretKeyBytes } from './secret-key-bytes.js';

describe('SecretKeyBytes', () => {
  it('never prints or serialises its bytes', () => {
    const key = SecretKeyBytes.copyOf(Uint8Array.from([0xde, 0xad, 0xbe, 0xef]));
    expect(String(key)).toBe('[SecretKeyBytes redacted]');
    expect([key].join('')).not.toMatch(/de|ad|be|ef|222|173/);
    expect(inspect({ key })).toBe('{ key: [SecretKeyBytes redacted] }');
    expect(() => JSON.stringify({ key })).toThrow(
      expect.objectContaining({ code: 'INTERNAL_ERROR' }) as Error,
    );
    expect(Object.keys(key)).toEqual([]);
  });

  it('holds its own copy, zeroes the source in takeFrom, and zeroes itself on dispose', () => {
    const source = Uint8Array.from([1, 2, 3]);
    const copy = SecretKeyBytes.copyOf(source);
    source[0] = 9;
    expect(copy.expose((b) => [...b])).toEqual([1, 2, 3]);
    const transient = Uint8Array.from([4, 5, 6]);
    const taken = SecretKeyBytes.takeFrom(transient);
    expect([...transient]).toEqual([0, 0, 0]);
    let view: Uint8Array | undefined;
    taken.expose((b) => (view = b));
    taken.dispose();
    expect([...view!]).toEqual([0, 0, 0]);
    expect(taken.disposed).toBe(true);
    expect(() => taken.expose((b) => b.length)).toThrow(/disposed/);
    const clone = copy.clone();
    copy.dispose();
    expect(clone.expose((b) => [...b])).toEqual([1, 2, 3]);
  });
});
