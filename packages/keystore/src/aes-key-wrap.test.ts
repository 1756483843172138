import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { aesKeyUnwrap, aesKeyUnwrapPad, aesKeyWrap, aesKeyWrapPad } from './aes-key-wrap.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** RFC 3394 §4.1–§4.6: every KEK size wrapping every key size. */
const RFC3394 = [
  [
    '4.1',
    '000102030405060708090A0B0C0D0E0F',
    '00112233445566778899AABBCCDDEEFF',
    '1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5',
  ],
  [
    '4.2',
    '000102030405060708090A0B0C0D0E0F1011121314151617',
    '00112233445566778899AABBCCDDEEFF',
    '96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D',
  ],
  [
    '4.3',
    '000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F',
    '00112233445566778899AABBCCDDEEFF',
    '64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7',
  ],
  [
    '4.4',
    '000102030405060708090A0B0C0D0E0F1011121314151617',
    '00112233445566778899AABBCCDDEEFF0001020304050607',
    '031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2',
  ],
  [
    '4.5',
    '000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F',
    '00112233445566778899AABBCCDDEEFF0001020304050607',
    'A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1',
  ],
  [
    '4.6',
    '000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F',
    '00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F',
    '28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21',
  ],
] as const;

/** RFC 5649 §6: a 192-bit KEK wrapping 20 bytes and 7 bytes. */
const RFC5649 = [
  [
    '20 octets',
    '5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8',
    'c37b7e6492584340 bed1220780894115 5068f738',
    '138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a',
  ],
  [
    '7 octets',
    '5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8',
    '466f7250617369',
    'afbeb0f07dfbf541 9200f2ccb50bb24f',
  ],
] as const;

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return isTresorError(err) ? err.code : `non-Tresor error: ${String(err)}`;
  }
};

describe('AES key wrap (RFC 3394)', () => {
  it.each(RFC3394)('matches the RFC 3394 §%s vector both ways', (_section, kek, key, wrapped) => {
    expect(toHex(aesKeyWrap(hex(kek), hex(key)))).toBe(toHex(hex(wrapped)));
    expect(toHex(aesKeyUnwrap(hex(kek), hex(wrapped)))).toBe(toHex(hex(key)));
  });

  it('round-trips and detects every single-bit change (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 16, maxLength: 64 }).filter((k) => k.length % 8 === 0),
        fc.nat(),
        (kek, key, flip) => {
          const wrapped = aesKeyWrap(kek, key);
          expect(toHex(aesKeyUnwrap(kek, wrapped))).toBe(toHex(key));
          const bit = flip % (wrapped.length * 8);
          wrapped[bit >> 3]! ^= 1 << (bit & 7);
          expect(codeOf(() => aesKeyUnwrap(kek, wrapped))).toBe('KEY_UNWRAP_FAILED');
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('refuses bad lengths with catalogue codes only (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), fc.uint8Array({ maxLength: 80 }), (kek, data) => {
        const code = codeOf(() => aesKeyUnwrap(kek, data));
        expect(['KEY_UNWRAP_FAILED', 'KEY_USAGE_INVALID']).toContain(code);
      }),
      { numRuns: 1000 },
    );
    expect(codeOf(() => aesKeyWrap(new Uint8Array(32), new Uint8Array(20)))).toBe('KEY_USAGE_INVALID');
    expect(codeOf(() => aesKeyWrap(new Uint8Array(20), new Uint8Array(32)))).toBe('KEY_USAGE_INVALID');
  });
});

describe('AES key wrap with padding (RFC 5649)', () => {
  it.each(RFC5649)('matches the RFC 5649 §6 vector for %s both ways', (_name, kek, key, wrapped) => {
    expect(toHex(aesKeyWrapPad(hex(kek), hex(key)))).toBe(toHex(hex(wrapped)));
    expect(toHex(aesKeyUnwrapPad(hex(kek), hex(wrapped)))).toBe(toHex(hex(key)));
  });

  it('round-trips any key length and refuses changed input (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 1, maxLength: 70 }),
        fc.nat(),
        (kek, key, flip) => {
          const wrapped = aesKeyWrapPad(kek, key);
          expect(toHex(aesKeyUnwrapPad(kek, wrapped))).toBe(toHex(key));
          const bit = flip % (wrapped.length * 8);
          wrapped[bit >> 3]! ^= 1 << (bit & 7);
          expect(codeOf(() => aesKeyUnwrapPad(kek, wrapped, 'KEY_IMPORT_INVALID'))).toBe(
            'KEY_IMPORT_INVALID',
          );
        },
      ),
      { numRuns: 1000 },
    );
  });
});
