import { hkdfSync } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelKey, importModelKeyFile, parseModelKeyFile } from './sealed-model-key.js';

const keyBytes = Uint8Array.from({ length: 32 }, (_, i) => i);
const keyHex = Buffer.from(keyBytes).toString('hex');
const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('key files', () => {
  it('accepts 32 raw bytes, or 64 hex digits in either case with at most one trailing newline', () => {
    for (const contents of [
      keyBytes,
      ascii(keyHex),
      ascii(`${keyHex}\n`),
      ascii(keyHex.toUpperCase()),
      ascii(`${keyHex.toUpperCase()}\n`),
    ]) {
      expect(parseModelKeyFile(contents)).toEqual(keyBytes);
    }
  });

  it('refuses every other shape with SEALED_MODEL_KEY_INVALID', () => {
    const invalid = [
      new Uint8Array(0),
      new Uint8Array(31),
      new Uint8Array(33),
      ascii(keyHex.slice(0, 62)),
      ascii(keyHex.slice(0, 63)),
      ascii(`${keyHex}0`),
      ascii(`${keyHex}\r\n`),
      ascii(`${keyHex}\n\n`),
      ascii(` ${keyHex}`),
      ascii(`${keyHex.slice(0, 63)}g`),
      ascii(`${keyHex.slice(0, 63)}g\n`),
      ascii('0x' + keyHex.slice(2)),
      new Uint8Array(65).fill(0x30),
    ];
    for (const contents of invalid) {
      expect(() => parseModelKeyFile(contents), `${String(contents.length)} bytes`).toThrow(
        expect.objectContaining({ code: 'SEALED_MODEL_KEY_INVALID' }) as Error,
      );
    }
  });

  it('never mentions the key material in its refusal', () => {
    try {
      parseModelKeyFile(ascii(`${keyHex}\r\n`));
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain(keyHex.slice(0, 16));
    }
  });

  it('raw and hex key files give the same key', async () => {
    const raw = await importModelKeyFile(keyBytes);
    const hex = await importModelKeyFile(ascii(`${keyHex}\n`));
    expect(raw.fingerprint).toBe(hex.fingerprint);
  });
});

describe('ModelKey', () => {
  it('refuses keys that are not 32 bytes', async () => {
    for (const length of [0, 16, 31, 33, 64]) {
      await expect(ModelKey.import(new Uint8Array(length))).rejects.toMatchObject({
        code: 'SEALED_MODEL_KEY_INVALID',
      });
    }
  });

  it('has the fingerprint HKDF-SHA256(key, salt = empty, info = label) truncated to 16 bytes (RFC 5869)', async () => {
    const key = await ModelKey.import(keyBytes);
    const expected = Buffer.from(
      hkdfSync('sha256', keyBytes, new Uint8Array(0), 'tresor sealed-model v1 key-fingerprint', 16),
    ).toString('hex');
    expect(key.fingerprint).toBe(expected);
  });

  it('gives different keys different fingerprints', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 255 }),
        async (bytes, bit) => {
          const other = new Uint8Array(bytes);
          other[bit >> 3]! ^= 1 << (bit & 7);
          const [a, b] = await Promise.all([ModelKey.import(bytes), ModelKey.import(other)]);
          expect(a.fingerprint).not.toBe(b.fingerprint);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('prints and serialises as its fingerprint only, never the key', async () => {
    const key = await ModelKey.import(keyBytes);
    for (const shown of [
      String(key),
      JSON.stringify({ key }),
      inspect(key, { showHidden: true, depth: 5 }),
    ]) {
      expect(shown).toContain(key.fingerprint);
      expect(shown).not.toContain(keyHex);
      expect(shown).not.toContain(Buffer.from(keyBytes).toString('base64'));
    }
    expect(Object.keys(key)).toEqual(['fingerprint']);
  });

  it('does not keep or modify the caller buffer', async () => {
    const caller = new Uint8Array(keyBytes);
    const key = await ModelKey.import(caller);
    caller.fill(0);
    const again = await ModelKey.import(keyBytes);
    expect(key.fingerprint).toBe(again.fingerprint);
  });
});
