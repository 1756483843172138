import { createCipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { GCM_TAG_LENGTH } from '../sealed-model-format.js';
import { GcmDecryptWorker, type WorkerChunk } from './gcm-worker.js';
import { sharedBytes } from './plaintext-sha256.js';

const key = createSecretKey(randomBytes(32));
const aad = randomBytes(32);

/** Seals `lengths` chunks of random plaintext back to back (ciphertext ‖ tag each) into shared memory. */
function sealedBlock(lengths: readonly number[], firstIndex = 0) {
  const plaintext = randomBytes(lengths.reduce((sum, length) => sum + length, 0));
  const sealed = sharedBytes(plaintext.length + lengths.length * GCM_TAG_LENGTH);
  const chunks: WorkerChunk[] = [];
  let from = 0;
  let to = 0;
  lengths.forEach((length, i) => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_LENGTH });
    cipher.setAAD(aad);
    sealed.set(cipher.update(plaintext.subarray(to, to + length)), from);
    cipher.final();
    sealed.set(cipher.getAuthTag(), from + length);
    chunks.push({ index: firstIndex + i, nonce, from, to, length });
    from += length + GCM_TAG_LENGTH;
    to += length;
  });
  return { plaintext, sealed, chunks, output: sharedBytes(plaintext.length) };
}

describe('GcmDecryptWorker', () => {
  let worker: GcmDecryptWorker | undefined;
  afterEach(async () => {
    await worker?.close();
  });

  it('decrypts each block into shared memory, chunk by chunk, pieces and short chunks included', async () => {
    worker = new GcmDecryptWorker();
    worker.setKey(key, aad);
    // Chunks longer than one update() piece (64 KiB), a short last chunk and an empty one.
    const blocks = [sealedBlock([200_000, 70_000]), sealedBlock([65_536, 1, 0], 2)];
    await Promise.all(blocks.map((b) => worker!.decrypt(b.sealed, b.output, b.chunks)));
    for (const b of blocks) expect(Buffer.from(b.output).equals(b.plaintext)).toBe(true);
  });

  it('refuses a changed byte with SEALED_MODEL_TAMPERED naming the chunk, and every later block too', async () => {
    worker = new GcmDecryptWorker();
    worker.setKey(key, aad);
    const good = sealedBlock([1000]);
    const bad = sealedBlock([1000, 1000], 1);
    const later = sealedBlock([1000], 3);
    bad.sealed[1000 + GCM_TAG_LENGTH + 5]! ^= 1; // in chunk 2's ciphertext
    const results = await Promise.allSettled([
      worker.decrypt(good.sealed, good.output, good.chunks),
      worker.decrypt(bad.sealed, bad.output, bad.chunks),
      worker.decrypt(later.sealed, later.output, later.chunks),
    ]);
    expect(results[0].status).toBe('fulfilled');
    for (const result of results.slice(1)) {
      expect(result).toMatchObject({
        status: 'rejected',
        reason: { code: 'SEALED_MODEL_TAMPERED', details: { chunk: 2 } },
      });
    }
    await expect(worker.decrypt(good.sealed, good.output, good.chunks)).rejects.toMatchObject({
      code: 'SEALED_MODEL_TAMPERED',
    });
  });

  it('refuses a tag checked under another AAD, memory that is not shared, and work after close()', async () => {
    worker = new GcmDecryptWorker();
    worker.setKey(key, randomBytes(32));
    const block = sealedBlock([100]);
    await expect(worker.decrypt(block.sealed, block.output, block.chunks)).rejects.toMatchObject({
      code: 'SEALED_MODEL_TAMPERED',
    });
    const other = new GcmDecryptWorker();
    await expect(other.decrypt(new Uint8Array(116), block.output, block.chunks)).rejects.toMatchObject({
      code: 'INTERNAL_ERROR',
    });
    await other.close();
    await other.close();
    await expect(other.decrypt(block.sealed, block.output, block.chunks)).rejects.toMatchObject({
      code: 'INTERNAL_ERROR',
    });
  });
});
