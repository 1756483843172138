import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import type { KeyId } from './key-id.js';
import { parseWrappedKey, serializeWrappedKey, type WrappedKey } from './wrapped-key.js';

const keyIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/).map((s) => s as KeyId);
const wrappedArb: fc.Arbitrary<WrappedKey> = fc.record({
  kekId: keyIdArb,
  algorithm: fc.constant('A256KW' as const),
  ciphertext: fc.uint8Array({ minLength: 40, maxLength: 40 }),
});

describe('wrapped key text form', () => {
  it('has a fixed, readable layout', () => {
    const text = serializeWrappedKey({
      kekId: 'kek-1' as KeyId,
      algorithm: 'A256KW',
      ciphertext: new Uint8Array(40).fill(0xff),
    });
    expect(text).toBe(`v1.A256KW.kek-1.${'_'.repeat(53)}w`);
  });

  it('round-trips (property)', () => {
    fc.assert(
      fc.property(wrappedArb, (w) => {
        expect(parseWrappedKey(serializeWrappedKey(w))).toEqual(w);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses any other text with INPUT_MALFORMED only (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (text) => {
        try {
          parseWrappedKey(text);
        } catch (err) {
          expect(isTresorError(err) && err.code).toBe('INPUT_MALFORMED');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses wrong versions, algorithms, ids and lengths', () => {
    const good = serializeWrappedKey({
      kekId: 'kek-1' as KeyId,
      algorithm: 'A256KW',
      ciphertext: new Uint8Array(40),
    });
    const payload = good.split('.')[3]!;
    for (const bad of [
      `v2.A256KW.kek-1.${payload}`,
      `v1.A128KW.kek-1.${payload}`,
      `v1.A256KW.kek/1.${payload}`,
      `v1.A256KW.kek-1.${payload}AAAA`,
      `v1.A256KW.kek-1.${payload.slice(4)}`,
      `v1.A256KW.kek-1.${payload}.x`,
      `v1.A256KW.kek-1.${payload.slice(0, -1)}+`,
    ]) {
      expect(() => parseWrappedKey(bad), bad).toThrow(
        expect.objectContaining({ code: 'INPUT_MALFORMED' }) as Error,
      );
    }
  });
});
