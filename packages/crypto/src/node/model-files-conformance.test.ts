import { createCipheriv, createHash, KeyObject, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { chunkNonce } from '../sealed-model-chunks.js';
import { GCM_TAG_LENGTH, chunkCount, chunkPlaintextLength } from '../sealed-model-format.js';
import { ModelKey } from '../sealed-model-key.js';
import { planSeal, sealHeaderBlock, sealModelBytes } from '../sealed-model-seal.js';
import { sealModelFile, unsealModelFile } from './index.js';

/**
 * The Node file sealer and unsealer (node:crypto, one read pass, tags moved to the real AAD at the
 * end) against the browser-safe WebCrypto implementation, which the format conformance test pins
 * to an independent implementation: both must write and accept exactly the same bytes.
 */

let dir: string;
const path = (name: string): string => join(dir, name);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tresor-model-conformance-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const keys = await Promise.all([1, 2].map((n) => ModelKey.import(new Uint8Array(32).fill(n))));
const key = keys[0]!;

/** Randomness that replays a fixed salt and nonce prefix (known-answer tests only). */
const replay =
  (salt: Uint8Array, noncePrefix: Uint8Array) =>
  (length: number): Uint8Array =>
    length === 32 ? salt : length === 7 ? noncePrefix : new Uint8Array(length);

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (err) {
    if (err instanceof TresorError) return err.code;
    throw err;
  }
}

describe('Node file sealer: the same bytes as the WebCrypto sealer', () => {
  it('reproduces the pinned test vector', async () => {
    const keyBytes = Uint8Array.from({ length: 32 }, (_, i) => i);
    const salt = Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i);
    const noncePrefix = Uint8Array.from({ length: 7 }, (_, i) => 0x40 + i);
    writeFileSync(path('vector.bin'), 'Tresor sealed model test vector: 56 bytes in 4 chunks!!!');
    for (const parallelHash of [false, true]) {
      await sealModelFile({
        input: path('vector.bin'),
        output: path('vector.tresor'),
        key: await ModelKey.import(keyBytes),
        chunkSize: 16,
        metadata: { name: 'vector' },
        randomBytes: replay(salt, noncePrefix),
        force: true,
        durable: false,
        parallelHash,
      });
      const digest = createHash('sha256')
        .update(readFileSync(path('vector.tresor')))
        .digest('hex');
      expect(digest, `parallelHash ${String(parallelHash)}`).toBe(PINNED_VECTOR_SHA256);
    }
  });

  it('writes what sealModelBytes writes, and unseals what it wrote, for arbitrary models', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 4, max: 100 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 7, maxLength: 7 }),
        async (k, plaintext, chunkSize, salt, noncePrefix) => {
          writeFileSync(path('in.bin'), plaintext);
          const options = { key: keys[k]!, chunkSize, randomBytes: replay(salt, noncePrefix) };
          await sealModelFile({
            input: path('in.bin'),
            output: path('in.tresor'),
            force: true,
            durable: false,
            parallelHash: false,
            ...options,
          });
          const expected = await sealModelBytes(plaintext, options);
          expect(readFileSync(path('in.tresor')).equals(expected)).toBe(true);
          writeFileSync(path('web.tresor'), expected);
          await unsealModelFile({
            input: path('web.tresor'),
            output: path('out.bin'),
            key: keys[k]!,
            force: true,
            durable: false,
            parallelHash: false,
          });
          expect(readFileSync(path('out.bin')).equals(plaintext)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('agrees across several blocks and a short last chunk, hashing on a worker thread or inline', async () => {
    // 9 MiB + 5 bytes in 1 MiB chunks: three blocks of up to four chunks, the last chunk 5 bytes.
    const plaintext = randomBytes(9 * 1024 * 1024 + 5);
    const salt = randomBytes(32);
    const noncePrefix = randomBytes(7);
    writeFileSync(path('big.bin'), plaintext);
    const options = { key, chunkSize: 1024 * 1024, randomBytes: replay(salt, noncePrefix) };
    const expected = await sealModelBytes(plaintext, options);
    for (const parallelHash of [true, false]) {
      await sealModelFile({
        input: path('big.bin'),
        output: path('big.tresor'),
        force: true,
        durable: false,
        parallelHash,
        ...options,
      });
      expect(
        readFileSync(path('big.tresor')).equals(expected),
        `seal, parallelHash ${String(parallelHash)}`,
      ).toBe(true);
      await unsealModelFile({
        input: path('big.tresor'),
        output: path('big.out'),
        key,
        force: true,
        durable: false,
        parallelHash,
      });
      expect(
        readFileSync(path('big.out')).equals(plaintext),
        `unseal, parallelHash ${String(parallelHash)}`,
      ).toBe(true);
    }
  });
});

describe('Node file sealer: placeholder tags', () => {
  it('never writes a tag computed under the placeholder AAD: tag slots stay zero until the real tags', async () => {
    const chunkSize = 1000;
    const plaintext = randomBytes(20 * chunkSize + 7);
    writeFileSync(path('slots.bin'), plaintext);
    const seen: Buffer[] = [];
    await sealModelFile({
      input: path('slots.bin'),
      output: path('slots.tresor'),
      key,
      chunkSize,
      force: true,
      durable: false,
      onProgress: (p) => {
        // After the last block was written, before the tags and the header.
        if (p.bytes === p.total) {
          const partial = readdirSync(dir).find((name) => name.startsWith('.slots.tresor.'));
          seen.push(readFileSync(path(partial!)));
        }
      },
    });
    const sealed = readFileSync(path('slots.tresor'));
    const partial = seen[0]!;
    expect(partial.length).toBe(sealed.length);
    const chunksOffset = 13 + sealed.readUInt32BE(9) + 32;
    const count = chunkCount(plaintext.length, chunkSize);
    for (let chunk = 0; chunk < count; chunk++) {
      const tagAt =
        chunksOffset +
        chunk * (chunkSize + GCM_TAG_LENGTH) +
        Math.min(chunkSize, plaintext.length - chunk * chunkSize);
      expect(
        partial.subarray(tagAt, tagAt + GCM_TAG_LENGTH).every((b) => b === 0),
        `chunk ${String(chunk)}`,
      ).toBe(true);
      expect(sealed.subarray(tagAt, tagAt + GCM_TAG_LENGTH).every((b) => b === 0)).toBe(false);
    }
    // The ciphertext was already in place; the header block is written last.
    expect(partial.subarray(chunksOffset).equals(zeroTags(sealed.subarray(chunksOffset), chunkSize))).toBe(
      true,
    );
    expect(partial.subarray(0, chunksOffset).every((b) => b === 0)).toBe(true);
  });
});

/** `sealed` chunks with every tag slot zeroed. */
function zeroTags(chunks: Buffer, chunkSize: number): Buffer {
  const copy = Buffer.from(chunks);
  for (let at = 0; at < copy.length; at += chunkSize + GCM_TAG_LENGTH) {
    const end = Math.min(at + chunkSize + GCM_TAG_LENGTH, copy.length);
    copy.fill(0, end - GCM_TAG_LENGTH, end);
  }
  return copy;
}

describe('Node file unsealer: refusals', () => {
  const plaintext = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
  let sealed: Buffer;
  beforeAll(async () => {
    sealed = Buffer.from(await sealModelBytes(plaintext, { key, chunkSize: 64 }));
  });

  async function unsealBytes(bytes: Uint8Array, parallelHash = false): Promise<string> {
    writeFileSync(path('case.tresor'), bytes);
    return codeOf(
      unsealModelFile({
        input: path('case.tresor'),
        output: path('case.out'),
        key,
        durable: false,
        parallelHash,
      }),
    );
  }

  it('refuses any changed byte after the header with SEALED_MODEL_TAMPERED, writing nothing', async () => {
    const headerEnd = 13 + sealed.readUInt32BE(9) + 32;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: headerEnd, max: sealed.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (offset, flip) => {
          const tampered = Buffer.from(sealed);
          tampered[offset]! ^= flip;
          expect(await unsealBytes(tampered)).toBe('SEALED_MODEL_TAMPERED');
        },
      ),
      { numRuns: 1000 },
    );
    expect(readdirSync(dir)).not.toContain('case.out');
    expect(readdirSync(dir).filter((name) => name.endsWith('.partial'))).toEqual([]);
  });

  it('refuses every truncation and any appended bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: sealed.length - 1 }), async (length) => {
        const code = await unsealBytes(sealed.subarray(0, length));
        expect(code).toBe(length < 8 ? 'SEALED_MODEL_MALFORMED' : 'SEALED_MODEL_TRUNCATED');
      }),
      { numRuns: 1000 },
    );
    expect(await unsealBytes(Buffer.concat([sealed, Buffer.of(0)]))).toBe('SEALED_MODEL_TAMPERED');
    expect(readdirSync(dir)).not.toContain('case.out');
  });

  it('swapping two chunks, or cutting at a chunk boundary, fails authentication (STREAM)', async () => {
    const headerEnd = 13 + sealed.readUInt32BE(9) + 32;
    const slot = 64 + GCM_TAG_LENGTH;
    const swapped = Buffer.from(sealed);
    sealed.copy(swapped, headerEnd, headerEnd + slot, headerEnd + 2 * slot);
    sealed.copy(swapped, headerEnd + slot, headerEnd, headerEnd + slot);
    expect(await unsealBytes(swapped)).toBe('SEALED_MODEL_TAMPERED');
    expect(await unsealBytes(swapped, true)).toBe('SEALED_MODEL_TAMPERED');
  });

  it('refuses a file whose chunks authenticate but whose recorded SHA-256 is wrong', async () => {
    for (const parallelHash of [false, true]) {
      expect(await unsealBytes(await sealRecordingDigest(plaintext, new Uint8Array(32)), parallelHash)).toBe(
        'SEALED_MODEL_DIGEST_MISMATCH',
      );
    }
    expect(await unsealBytes(await sealRecordingDigest(plaintext, sha256(plaintext)))).toBe('OK');
    expect(readFileSync(path('case.out')).equals(plaintext)).toBe(true);
  });
});

const sha256 = (bytes: Uint8Array): Uint8Array => createHash('sha256').update(bytes).digest();

/** Seals with every tag valid but `recorded` as the plaintext digest: only the digest check can catch it. */
async function sealRecordingDigest(plaintext: Uint8Array, recorded: Uint8Array): Promise<Buffer> {
  const chunkSize = 64;
  const plan = await planSeal({ key, plaintextLength: plaintext.length, chunkSize });
  const block = await sealHeaderBlock(plan, recorded);
  const chunkKey = KeyObject.from(plan.keys.chunkKey);
  const parts: Uint8Array[] = [block.headerBytes, block.mac];
  const count = chunkCount(plaintext.length, chunkSize);
  for (let i = 0; i < count; i++) {
    const cipher = createCipheriv('aes-256-gcm', chunkKey, chunkNonce(plan.noncePrefix, i, i === count - 1));
    cipher.setAAD(block.aad);
    const start = i * chunkSize;
    parts.push(cipher.update(plaintext.subarray(start, start + chunkPlaintextLength(plan.header, i))));
    cipher.final();
    parts.push(cipher.getAuthTag());
  }
  return Buffer.concat(parts);
}

/** SHA-256 of the sealed test vector (sealed-model-conformance.test.ts pins the same value). */
const PINNED_VECTOR_SHA256 = '7446a2e9308facf666c1853c59e3d63a6c52d62eb9e503be8f7454aaac3b3d67';
