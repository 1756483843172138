import { createCipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GcmAadCorrection } from './gcm-aad-correction.js';

function gcmTag(key: KeyObject, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  cipher.update(plaintext);
  cipher.final();
  return cipher.getAuthTag();
}

const xor = (a: Uint8Array, b: Uint8Array): Uint8Array => a.map((byte, i) => byte ^ b[i]!);

describe('GcmAadCorrection', () => {
  it('matches the tag OpenSSL computes under the real AAD (NIST GCM test case 16 key and IV)', () => {
    // Key, IV, AAD and plaintext of the GCM specification's test case 16 (AES-256, 60-byte plaintext).
    const key = createSecretKey(
      Buffer.from('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308', 'hex'),
    );
    const nonce = Buffer.from('cafebabefacedbaddecaf888', 'hex');
    const aad = Buffer.from('feedfacedeadbeeffeedfacedeadbeefabaddad2', 'hex');
    const plaintext = Buffer.from(
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
      'hex',
    );
    expect(gcmTag(key, nonce, aad, plaintext).toString('hex')).toBe('76fc6ece0f4e1768cddf8853bb2d551b');
    const tag = gcmTag(key, nonce, new Uint8Array(aad.length), plaintext);
    const correction = new GcmAadCorrection(key, aad);
    correction.correct(tag, plaintext.length);
    expect(tag.toString('hex')).toBe('76fc6ece0f4e1768cddf8853bb2d551b');
  });

  it('moves any tag between any two AADs of equal length, for any ciphertext length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc
          .integer({ min: 0, max: 70 })
          .chain((n) =>
            fc.tuple(
              fc.uint8Array({ minLength: n, maxLength: n }),
              fc.uint8Array({ minLength: n, maxLength: n }),
            ),
          ),
        fc.uint8Array({ maxLength: 300 }),
        (rawKey, nonce, [from, to], plaintext) => {
          const key = createSecretKey(rawKey);
          const tag = gcmTag(key, nonce, from, plaintext);
          const correction = new GcmAadCorrection(key, xor(from, to));
          correction.correct(tag, plaintext.length);
          correction.dispose();
          expect(tag.equals(gcmTag(key, nonce, to, plaintext))).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('serves chunks of 4 MiB and their neighbours (high powers of H)', () => {
    const key = createSecretKey(randomBytes(32));
    const aad = randomBytes(32);
    const correction = new GcmAadCorrection(key, aad);
    for (const length of [4 * 1024 * 1024, 4 * 1024 * 1024 - 1, 1_000_003]) {
      const plaintext = randomBytes(length);
      const nonce = randomBytes(12);
      const tag = gcmTag(key, nonce, new Uint8Array(32), plaintext);
      correction.correct(tag, length);
      expect(tag.equals(gcmTag(key, nonce, aad, plaintext)), String(length)).toBe(true);
    }
  });

  it('changes nothing when the AADs are equal, and refuses a tag that is not 16 bytes', () => {
    const key = createSecretKey(randomBytes(32));
    const correction = new GcmAadCorrection(key, new Uint8Array(32));
    expect([...correction.forCiphertextLength(4096)]).toEqual(new Array<number>(16).fill(0));
    expect(() => {
      correction.correct(new Uint8Array(12), 0);
    }).toThrow(expect.objectContaining({ code: 'INTERNAL_ERROR' }));
  });
});
