import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import {
  base64ToBytes,
  bytesToBase64,
  bytesToBase64Url,
  bytesToHex,
  concatBytes,
  equalBytes,
  hexToBytes,
  utf8Decode,
} from './bytes.js';

describe('byte helpers', () => {
  it('hex and base64 round trip and agree with Node Buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(bytesToHex(b)).toBe(Buffer.from(b).toString('hex'));
        expect(hexToBytes(bytesToHex(b))).toEqual(b);
        expect(bytesToBase64(b)).toBe(Buffer.from(b).toString('base64'));
        expect(bytesToBase64Url(b)).toBe(Buffer.from(b).toString('base64url'));
        expect(base64ToBytes(bytesToBase64(b))).toEqual(b);
        expect(base64ToBytes(bytesToBase64Url(b))).toEqual(b);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses malformed hex, base64 and UTF-8 with INPUT_MALFORMED', () => {
    for (const bad of ['a', 'zz', '0x00', 'ab cd']) expect(() => hexToBytes(bad)).toThrow(/hexadecimal/);
    for (const bad of ['a', 'ab!c', 'a=b']) expect(() => base64ToBytes(bad)).toThrow(/base64/);
    expect(() => utf8Decode(new Uint8Array([0xff]))).toThrow(/UTF-8/);
  });

  it('concatenates and compares', () => {
    expect(concatBytes(new Uint8Array([1]), new Uint8Array([2, 3]))).toEqual(new Uint8Array([1, 2, 3]));
    expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(equalBytes(new Uint8Array([1]), new Uint8Array([1, 2]))).toBe(false);
  });
});
