import { KeyObject } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { chunkNonce } from '../sealed-model-chunks.js';
import { GCM_TAG_LENGTH, type SealedModelHeader } from '../sealed-model-format.js';
import {
  checkPlaintextDigest,
  openSealedModel,
  trailingBytes,
  truncatedInChunk,
  type AuthenticatedSealedModel,
} from '../sealed-model-unseal.js';
import { AtomicOutputFile } from './atomic-output.js';
import { runBlockPipeline, settleAll } from './block-pipeline.js';
import { ChunkBlocks } from './chunk-blocks.js';
import { FileByteSource } from './file-source.js';
import { retainFreedHeapFor } from './freed-heap-retention.js';
import { decryptChunkInto } from './gcm-chunk.js';
import { GcmDecryptWorker, type WorkerChunk } from './gcm-worker.js';
import type { ModelFileOptions } from './model-file-options.js';
import {
  closeHasher,
  digestOf,
  plaintextSha256,
  sharedBytes,
  type PlaintextSha256,
} from './plaintext-sha256.js';

/**
 * Unseals a `.tresor` file. The checks and their order are those of `SealedModelReader.unseal()`
 * (docs/crypto.md, "Verification order"); the chunks are decrypted with node:crypto instead of
 * WebCrypto. No plaintext of a chunk is written before its tag verified, and the plaintext goes to
 * a temporary file (mode 0600) that is renamed to `options.output` only after every chunk verified
 * and the plaintext SHA-256 matched the header, so nothing unverified is ever visible under the
 * output name.
 */
export async function unsealModelFile(options: ModelFileOptions): Promise<SealedModelHeader> {
  const source = await FileByteSource.open(options.input);
  try {
    const sealed = await openSealedModel(source);
    const { header } = sealed;
    const hasher = plaintextSha256(header.plaintextLength, options.parallelHash);
    // With a hashing thread, AES-GCM gets one too (gcm-worker.ts says why); both start now, while
    // the key is derived.
    const decryptor = hasher.thread === 'worker' ? new GcmDecryptWorker() : undefined;
    try {
      // Overlaps the key derivation, like the threads' start-up.
      const retention = retainFreedHeapFor(header.plaintextLength);
      const authenticated = await sealed.authenticate(options.key);
      await retention;
      const output = await AtomicOutputFile.create(options.output, {
        ...(options.force === undefined ? {} : { force: options.force }),
        durable: options.durable ?? true,
        mode: 0o600,
      });
      try {
        const blocks = new ChunkBlocks(header);
        await decryptBlocks(source, output, authenticated, blocks, { hasher, decryptor }, options);
        if ((await source.readInto(new Uint8Array(1), sealed.sealedSize)) !== 0) throw trailingBytes();
        checkPlaintextDigest(header, await digestOf(hasher));
        // A signal that arrived after the last chunk still wins: nothing appears.
        options.signal?.throwIfAborted();
        await output.commit();
        return header;
      } finally {
        await output.discard();
      }
    } finally {
      await Promise.all([closeHasher(hasher), decryptor?.close()]);
    }
  } finally {
    await source.close();
  }
}

/** The threads a pass uses besides the calling one (none for small inputs or on one core). */
interface UnsealThreads {
  readonly hasher: PlaintextSha256;
  readonly decryptor: GcmDecryptWorker | undefined;
}

/** The buffers one block in flight uses: sealed bytes read from the file, and their plaintext. */
interface UnsealLane {
  readonly sealed: Uint8Array;
  readonly plaintext: Uint8Array;
}

/**
 * Pass over the chunks: reads each block, decrypts and verifies all its chunks into shared
 * memory (on this thread, or on the AES-GCM worker while this one reads and writes), and only
 * then writes that plaintext and hands it to the hasher, block after block in order.
 */
async function decryptBlocks(
  source: FileByteSource,
  output: AtomicOutputFile,
  authenticated: AuthenticatedSealedModel,
  blocks: ChunkBlocks,
  { hasher, decryptor }: UnsealThreads,
  options: ModelFileOptions,
): Promise<void> {
  const { aad, noncePrefix, chunksOffset } = authenticated;
  const chunkKey = KeyObject.from(authenticated.chunkKey);
  decryptor?.setKey(chunkKey, aad);
  // The worker reads the sealed bytes from shared memory too; with it, one more block in flight
  // keeps it busy while this thread reads the next one and writes the previous one.
  const lanes: UnsealLane[] = Array.from(
    { length: decryptor === undefined ? blocks.lanes : blocks.lanes + 1 },
    () => ({
      sealed:
        decryptor === undefined ? new Uint8Array(blocks.maxSealedBytes) : sharedBytes(blocks.maxSealedBytes),
      plaintext: sharedBytes(blocks.maxPlaintextBytes),
    }),
  );
  const observe = hasher.thread === 'inline' ? (piece: Uint8Array) => hasher.hash.update(piece) : undefined;
  let nextToRelease = 0;
  /** Every chunk of the block verified: its plaintext may now leave the lane. */
  const release = (index: number, lane: UnsealLane): Promise<void> => {
    // The hash is sequential: blocks must reach it in order (the worker answers in order).
    if (index !== nextToRelease++) {
      throw new TresorError('INTERNAL_ERROR', `block ${String(index)} was released out of order`);
    }
    const block = blocks.block(index);
    const plaintext = lane.plaintext.subarray(0, block.plaintextLength);
    const hashed = hasher.thread === 'worker' ? hasher.worker.update(plaintext) : undefined;
    const written = output.writeAt(plaintext, block.plaintextOffset);
    return settleAll([hashed, written]).then(() => {
      options.onProgress?.({
        phase: 'unsealing',
        bytes: block.plaintextOffset + block.plaintextLength,
        total: blocks.plaintextLength,
      });
    });
  };
  const chunksOf = (index: number): WorkerChunk[] => {
    const block = blocks.block(index);
    const chunks: WorkerChunk[] = [];
    let from = 0;
    let to = 0;
    for (let chunk = block.firstChunk; chunk < block.endChunk; chunk++) {
      const length = blocks.chunkLength(chunk);
      chunks.push({
        index: chunk,
        nonce: chunkNonce(noncePrefix, chunk, chunk === blocks.chunkCount - 1),
        from,
        to,
        length,
      });
      from += length + GCM_TAG_LENGTH;
      to += length;
    }
    return chunks;
  };
  // An event at zero first: a progress display can show the phase and, later, a rate.
  options.onProgress?.({ phase: 'unsealing', bytes: 0, total: blocks.plaintextLength });
  await runBlockPipeline(
    blocks.blockCount,
    lanes,
    {
      async read(index, lane) {
        const block = blocks.block(index);
        const read = await source.readInto(
          lane.sealed.subarray(0, block.sealedLength),
          chunksOffset + block.sealedOffset,
        );
        if (read < block.sealedLength) {
          // The size was checked against the header; the file was cut while it was being read.
          const chunk = block.firstChunk + Math.floor(read / (blocks.chunkSize + GCM_TAG_LENGTH));
          throw truncatedInChunk(chunk, blocks.chunkCount);
        }
      },
      process(index, lane) {
        const chunks = chunksOf(index);
        if (decryptor !== undefined) {
          return decryptor.decrypt(lane.sealed, lane.plaintext, chunks).then(() => release(index, lane));
        }
        for (const { index: chunk, nonce, from, to, length } of chunks) {
          decryptChunkInto(
            chunkKey,
            nonce,
            aad,
            lane.sealed.subarray(from, from + length + GCM_TAG_LENGTH),
            lane.plaintext.subarray(to, to + length),
            chunk,
            observe,
          );
        }
        return release(index, lane);
      },
    },
    options.signal,
  );
}
