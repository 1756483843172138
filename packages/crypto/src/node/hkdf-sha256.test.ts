import { hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToHex, concatBytes, hexToBytes } from '../bytes.js';
import { HKDF_SHA256_MAX_LENGTH, hkdfExpand, hkdfExtract } from './hkdf-sha256.js';

const range = (from: number, to: number): Uint8Array =>
  Uint8Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** RFC 5869 Appendix A, test cases 1–3 (SHA-256). */
const RFC5869 = [
  {
    name: 'A.1 basic',
    ikm: new Uint8Array(22).fill(0x0b),
    salt: range(0x00, 0x0c),
    info: range(0xf0, 0xf9),
    length: 42,
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    name: 'A.2 longer inputs and outputs',
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    length: 82,
    prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
    okm:
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09' +
      'da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    name: 'A.3 empty salt and info',
    ikm: new Uint8Array(22).fill(0x0b),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
] as const;

describe('HKDF-SHA256 as HMAC calls', () => {
  it.each(RFC5869)('matches RFC 5869 $name', ({ ikm, salt, info, length, prk, okm }) => {
    const extracted = hkdfExtract(salt, ikm);
    expect(bytesToHex(extracted)).toBe(prk);
    expect(bytesToHex(hkdfExpand(extracted, [info], length))).toBe(okm);
  });

  it('equals node:crypto hkdfSync, with inputs given whole or in parts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.array(fc.uint8Array({ maxLength: 24 }), { maxLength: 4 }),
        fc.oneof(fc.integer({ min: 1, max: 100 }), fc.constantFrom(32, 64, HKDF_SHA256_MAX_LENGTH)),
        (ikmParts, salt, infoParts, length) => {
          const ikm = concatBytes(...ikmParts);
          const info = concatBytes(...infoParts);
          const expected = bytesToHex(new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)));
          const okm = hkdfExpand(hkdfExtract(salt, ...ikmParts), infoParts, length);
          expect(okm.length).toBe(length);
          expect(bytesToHex(okm)).toBe(expected);
        },
      ),
      { numRuns: 200, seed: 5869 },
    );
  });

  it('refuses an output length outside 1..255 × 32 bytes', () => {
    const prk = hexToBytes(RFC5869[0].prk);
    for (const length of [0, -1, 1.5, HKDF_SHA256_MAX_LENGTH + 1, Number.NaN]) {
      expect(() => hkdfExpand(prk, [], length)).toThrow(RangeError);
    }
  });
});
