import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from './bytes.js';
import { encodeVarint, readVarint, tryReadVarint } from './varint.js';

describe('QUIC varint (RFC 9000 §16, Appendix A.1 examples)', () => {
  it('decodes the RFC examples', () => {
    // 0xc2197c5eff14e88c = 151288809941952652 exceeds 2^53 and is refused (see varint.ts).
    expect(() => readVarint(hexToBytes('c2197c5eff14e88c'), 0)).toThrow(/largest supported/);
    const examples: [string, number][] = [
      ['9d7f3e7d', 494878333],
      ['7bbd', 15293],
      ['25', 37],
      ['4025', 37],
    ];
    for (const [hex, value] of examples) {
      expect(readVarint(hexToBytes(hex), 0).value).toBe(value);
    }
    expect(bytesToHex(encodeVarint(494878333))).toBe('9d7f3e7d');
    expect(bytesToHex(encodeVarint(15293))).toBe('7bbd');
    expect(bytesToHex(encodeVarint(37))).toBe('25');
  });

  it('round trips every safe integer in the shortest form', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        const enc = encodeVarint(n);
        expect(readVarint(enc, 0)).toEqual({ value: n, next: enc.length });
        expect(tryReadVarint(enc.subarray(0, enc.length - 1), 0)).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it('reports truncation with the caller-chosen code', () => {
    expect(() => readVarint(hexToBytes('40'), 0, 'BHTTP_MALFORMED')).toThrow(
      expect.objectContaining({ code: 'BHTTP_MALFORMED' }),
    );
  });
});
