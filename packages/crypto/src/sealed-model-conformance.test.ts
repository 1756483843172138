import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { ModelKey } from './sealed-model-key.js';
import { sealModelBytes } from './sealed-model-seal.js';
import { byteSourceFromBytes } from './sealed-model-source.js';
import { openSealedModel, unsealModelBytes } from './sealed-model-unseal.js';

/**
 * An independent implementation of the byte layout in docs/crypto.md ("Sealed models") on
 * node:crypto (OpenSSL), sharing no code with the WebCrypto implementation. Both must produce
 * and accept the same bytes; the pinned digest below catches a change made to both at once.
 */
const reference = {
  magic: Buffer.from('89545245534f520a', 'hex'),
  hkdf: (key: Uint8Array, salt: Uint8Array, label: string, length: number): Buffer =>
    Buffer.from(hkdfSync('sha256', key, salt, `tresor sealed-model v1 ${label}`, length)),

  seal(options: {
    key: Uint8Array;
    salt: Uint8Array;
    noncePrefix: Uint8Array;
    chunkSize: number;
    plaintext: Uint8Array;
    keyId?: string;
    metadata?: Record<string, string>;
    recordedSha256?: string;
  }): Buffer {
    const { key, salt, noncePrefix, chunkSize, plaintext } = options;
    const fingerprint = reference.hkdf(key, new Uint8Array(0), 'key-fingerprint', 16).toString('hex');
    const metadata = options.metadata ?? {};
    const json = Buffer.from(
      JSON.stringify({
        algorithm: 'AES-256-GCM-HKDF-SHA256-STREAM',
        chunkSize,
        keyFingerprint: fingerprint,
        keyId: options.keyId ?? `key-fingerprint:${fingerprint}`,
        metadata: Object.fromEntries(
          Object.keys(metadata)
            .sort()
            .map((k) => [k, metadata[k]]),
        ),
        noncePrefix: Buffer.from(noncePrefix).toString('hex'),
        plaintextLength: plaintext.length,
        plaintextSha256: options.recordedSha256 ?? createHash('sha256').update(plaintext).digest('hex'),
        salt: Buffer.from(salt).toString('hex'),
      }),
    );
    const length = Buffer.alloc(4);
    length.writeUInt32BE(json.length);
    const header = Buffer.concat([reference.magic, Buffer.of(1), length, json]);
    const mac = createHmac('sha256', reference.hkdf(key, salt, 'header-mac-key', 32))
      .update(header)
      .digest();
    const aad = createHash('sha256').update(header).digest();
    const chunkKey = reference.hkdf(key, salt, 'chunk-key', 32);
    const count = plaintext.length === 0 ? 1 : Math.ceil(plaintext.length / chunkSize);
    const chunks: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const cipher = createCipheriv(
        'aes-256-gcm',
        chunkKey,
        reference.nonce(noncePrefix, i, i === count - 1),
      );
      cipher.setAAD(aad);
      chunks.push(cipher.update(plaintext.subarray(i * chunkSize, (i + 1) * chunkSize)), cipher.final());
      chunks.push(cipher.getAuthTag());
    }
    return Buffer.concat([header, mac, ...chunks]);
  },

  nonce(prefix: Uint8Array, index: number, last: boolean): Buffer {
    const nonce = Buffer.alloc(12);
    nonce.set(prefix, 0);
    nonce.writeUInt32BE(index, 7);
    nonce[11] = last ? 1 : 0;
    return nonce;
  },

  unseal(sealed: Buffer, key: Uint8Array): Buffer {
    const length = sealed.readUInt32BE(9);
    const header = sealed.subarray(0, 13 + length);
    const fields = JSON.parse(header.subarray(13).toString('utf8')) as {
      chunkSize: number;
      plaintextLength: number;
      salt: string;
      noncePrefix: string;
    };
    const salt = Buffer.from(fields.salt, 'hex');
    const mac = createHmac('sha256', reference.hkdf(key, salt, 'header-mac-key', 32))
      .update(header)
      .digest();
    if (!mac.equals(sealed.subarray(13 + length, 45 + length))) throw new Error('header MAC');
    const aad = createHash('sha256').update(header).digest();
    const chunkKey = reference.hkdf(key, salt, 'chunk-key', 32);
    const count = fields.plaintextLength === 0 ? 1 : Math.ceil(fields.plaintextLength / fields.chunkSize);
    const out: Buffer[] = [];
    let offset = 45 + length;
    for (let i = 0; i < count; i++) {
      const size = Math.min(fields.chunkSize, fields.plaintextLength - i * fields.chunkSize);
      const decipher = createDecipheriv(
        'aes-256-gcm',
        chunkKey,
        reference.nonce(Buffer.from(fields.noncePrefix, 'hex'), i, i === count - 1),
      );
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(offset + size, offset + size + 16));
      out.push(decipher.update(sealed.subarray(offset, offset + size)), decipher.final());
      offset += size + 16;
    }
    if (offset !== sealed.length) throw new Error('trailing bytes');
    return Buffer.concat(out);
  },
};

/** Randomness for sealModel that replays fixed salt and nonce prefix. */
const replay =
  (salt: Uint8Array, noncePrefix: Uint8Array) =>
  (length: number): Uint8Array =>
    length === 32 ? salt : length === 7 ? noncePrefix : new Uint8Array(length);

describe('sealed model format conformance (independent node:crypto implementation)', () => {
  const keyBytes = Uint8Array.from({ length: 32 }, (_, i) => i);
  const salt = Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i);
  const noncePrefix = Uint8Array.from({ length: 7 }, (_, i) => 0x40 + i);
  const plaintext = new TextEncoder().encode('Tresor sealed model test vector: 56 bytes in 4 chunks!!!');

  it('produces the pinned test vector, byte for byte equal to the reference implementation', async () => {
    const key = await ModelKey.import(keyBytes);
    const sealed = await sealModelBytes(plaintext, {
      key,
      chunkSize: 16,
      metadata: { name: 'vector' },
      randomBytes: replay(salt, noncePrefix),
    });
    const expected = reference.seal({
      key: keyBytes,
      salt,
      noncePrefix,
      chunkSize: 16,
      plaintext,
      metadata: { name: 'vector' },
    });
    expect(Buffer.from(sealed).toString('hex')).toBe(expected.toString('hex'));
    expect(createHash('sha256').update(sealed).digest('hex')).toBe(PINNED_VECTOR_SHA256);
  });

  it('agrees with the reference in both directions for arbitrary models', async () => {
    const keys = await Promise.all([1, 2].map((n) => ModelKey.import(new Uint8Array(32).fill(n))));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 1, max: 48 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 7, maxLength: 7 }),
        fc.dictionary(
          fc.stringMatching(/^[a-z][a-z0-9._-]{0,8}$/),
          fc.stringMatching(/^[ -~\u00a0-\u00ff€😀]{0,20}$/u),
          {
            maxKeys: 3,
          },
        ),
        async (k, bytes, chunkSize, fileSalt, prefix, metadata) => {
          const keyRaw = new Uint8Array(32).fill(k + 1);
          const ours = await sealModelBytes(bytes, {
            key: keys[k]!,
            chunkSize,
            metadata,
            randomBytes: replay(fileSalt, prefix),
          });
          const theirs = reference.seal({
            key: keyRaw,
            salt: fileSalt,
            noncePrefix: prefix,
            chunkSize,
            plaintext: bytes,
            metadata,
          });
          expect(Buffer.from(ours).equals(theirs)).toBe(true);
          expect(reference.unseal(Buffer.from(ours), keyRaw).equals(Buffer.from(bytes))).toBe(true);
          expect(Buffer.from(await unsealModelBytes(theirs, keys[k]!)).equals(Buffer.from(bytes))).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('refuses a correctly authenticated file whose recorded SHA-256 is wrong, after releasing every chunk', async () => {
    const key = await ModelKey.import(keyBytes);
    const sealed = reference.seal({
      key: keyBytes,
      salt,
      noncePrefix,
      chunkSize: 16,
      plaintext,
      recordedSha256: '00'.repeat(32),
    });
    const reader = await openSealedModel(byteSourceFromBytes(sealed));
    const emitted: Uint8Array[] = [];
    let error: unknown;
    try {
      for await (const chunk of reader.unseal(key)) emitted.push(chunk);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TresorError);
    expect((error as TresorError).code).toBe('SEALED_MODEL_DIGEST_MISMATCH');
    expect(Buffer.concat(emitted).equals(Buffer.from(plaintext))).toBe(true);
  });
});

/** SHA-256 of the sealed test vector above; changes only with a deliberate format change. */
const PINNED_VECTOR_SHA256 = '7446a2e9308facf666c1853c59e3d63a6c52d62eb9e503be8f7454aaac3b3d67';
