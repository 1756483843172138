import { KeyObject } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { concatBytes } from '../bytes.js';
import { chunkNonce } from '../sealed-model-chunks.js';
import {
  DEFAULT_CHUNK_SIZE,
  GCM_TAG_LENGTH,
  HEADER_MAC_LENGTH,
  type SealedModelHeader,
} from '../sealed-model-format.js';
import { inputChanged, planSeal, sealHeaderBlock, type SealPlan } from '../sealed-model-seal.js';
import { AtomicOutputFile } from './atomic-output.js';
import { runBlockPipeline, settleAll } from './block-pipeline.js';
import { ChunkBlocks } from './chunk-blocks.js';
import { FileByteSource } from './file-source.js';
import { retainFreedHeapFor } from './freed-heap-retention.js';
import { GcmAadCorrection } from './gcm-aad-correction.js';
import { encryptChunkInto } from './gcm-chunk.js';
import type { ModelFileOptions } from './model-file-options.js';
import {
  closeHasher,
  digestOf,
  plaintextSha256,
  sharedBytes,
  type PlaintextSha256,
} from './plaintext-sha256.js';

export interface SealModelFileOptions extends ModelFileOptions {
  /** Name under which the key is released (e.g. `kbs:///repo/type/tag`); default derived from the key. */
  readonly keyId?: string;
  readonly chunkSize?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * FOR KNOWN-ANSWER TESTS ONLY: the source of the per-file salt and nonce prefix (see
   * `SealModelOptions.randomBytes`); production code never sets this.
   */
  readonly randomBytes?: (length: number) => Uint8Array;
}

/**
 * Tags held until the digest is known, 16 bytes each: 64 MiB at most. At the default 4 MiB chunk
 * size that allows 16 TiB; only tiny chunks of huge files reach it.
 */
export const MAX_DEFERRED_TAGS = 4 * 1024 * 1024;

/** The placeholder AAD the chunks are first sealed under: the real one is SHA-256-sized too. */
const PLACEHOLDER_AAD = new Uint8Array(32);

/**
 * Seals a model file into a `.tresor` file in one read of the input.
 *
 * Every chunk's AAD is the hash of the header, which records the plaintext SHA-256, so the digest
 * is needed before a tag can be computed. Instead of reading the input twice, each chunk is
 * encrypted at once under a placeholder AAD (the ciphertext does not depend on the AAD) while a
 * second core hashes the same bytes; its tag is kept in memory and moved to the real AAD at the
 * end (gcm-aad-correction.ts), when the tags and then the header are written into their places.
 * The input is refused with SEALED_MODEL_INPUT_CHANGED if its size, inode or times changed
 * while it was read. The output appears at `options.output` only if everything succeeded.
 */
export async function sealModelFile(options: SealModelFileOptions): Promise<SealedModelHeader> {
  const input = await FileByteSource.open(options.input);
  try {
    const stamp = await input.changeStamp();
    // Started first: a worker thread's start-up then overlaps the key derivation.
    const hasher = plaintextSha256(input.size, options.parallelHash);
    const retention = retainFreedHeapFor(input.size);
    try {
      // Checks the chunk size and metadata (USAGE_INVALID) before anything is allocated for them.
      const plan = await planSeal({
        key: options.key,
        plaintextLength: input.size,
        chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
        ...(options.keyId === undefined ? {} : { keyId: options.keyId }),
        ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
        ...(options.randomBytes === undefined ? {} : { randomBytes: options.randomBytes }),
      });
      const blocks = new ChunkBlocks(plan.header);
      refuseTooManyChunks(blocks);
      await retention;
      const output = await AtomicOutputFile.create(options.output, {
        ...(options.force === undefined ? {} : { force: options.force }),
        durable: options.durable ?? true,
        mode: 0o644,
      });
      try {
        const header = await sealInto(output, { input, stamp, plan, blocks, hasher }, options);
        // A signal that arrived after the last chunk still wins: nothing appears.
        options.signal?.throwIfAborted();
        await output.commit();
        return header;
      } finally {
        await output.discard();
      }
    } finally {
      await closeHasher(hasher);
    }
  } finally {
    await input.close();
  }
}

/** What one seal works with, fixed before the first block is read. */
interface Sealing {
  readonly input: FileByteSource;
  /** The input's change stamp when it was opened. */
  readonly stamp: string;
  readonly plan: SealPlan;
  readonly blocks: ChunkBlocks;
  readonly hasher: PlaintextSha256;
}

/**
 * Writes the whole sealed file into `output`: the chunks under the placeholder AAD, then, with
 * the digest, the real tags and the header. Refuses an input that changed meanwhile.
 */
async function sealInto(
  output: AtomicOutputFile,
  sealing: Sealing,
  options: SealModelFileOptions,
): Promise<SealedModelHeader> {
  const { input, plan, blocks, hasher } = sealing;
  const chunkKey = KeyObject.from(plan.keys.chunkKey);
  const placeholderTags = new Uint8Array(blocks.chunkCount * GCM_TAG_LENGTH);
  try {
    await encryptBlocks(output, sealing, chunkKey, placeholderTags, options);
    if ((await input.readInto(new Uint8Array(1), blocks.plaintextLength)) !== 0)
      throw inputChanged('it grew');
    if ((await input.changeStamp()) !== sealing.stamp) {
      throw inputChanged('it was written to while it was being read');
    }
    const block = await sealHeaderBlock(plan, await digestOf(hasher));
    if (block.headerBytes.length !== plan.headerLength) {
      throw new TresorError('INTERNAL_ERROR', 'the sealed model header changed length');
    }
    await writeTags(output, sealing, chunkKey, block.aad, placeholderTags);
    await output.writeAt(concatBytes(block.headerBytes, block.mac), 0);
    return block.header;
  } finally {
    placeholderTags.fill(0);
  }
}

function refuseTooManyChunks(blocks: ChunkBlocks): void {
  if (blocks.chunkCount <= MAX_DEFERRED_TAGS) return;
  const minimum = Math.ceil(blocks.plaintextLength / MAX_DEFERRED_TAGS);
  throw new TresorError(
    'USAGE_INVALID',
    `cannot seal ${String(blocks.chunkCount)} chunks: the sealer holds every chunk's tag in memory until the digest is known, for at most ${String(MAX_DEFERRED_TAGS)} chunks; use a chunk size of at least ${String(minimum)} bytes`,
  );
}

/** The buffers one block in flight uses: plaintext read from the input, and its sealed form. */
interface SealLane {
  readonly plaintext: Uint8Array;
  readonly sealed: Uint8Array;
}

/**
 * Pass over the input: reads each block into shared memory, hands it to the hasher, encrypts its
 * chunks under the placeholder AAD into the sealed buffer (tag slots left zero) and writes that
 * at the block's place in the output. The placeholder tags go to `placeholderTags` only.
 */
async function encryptBlocks(
  output: AtomicOutputFile,
  sealing: Sealing,
  chunkKey: KeyObject,
  placeholderTags: Uint8Array,
  options: SealModelFileOptions,
): Promise<void> {
  const { input, plan, blocks, hasher } = sealing;
  const chunksOffset = plan.headerLength + HEADER_MAC_LENGTH;
  const lanes: SealLane[] = Array.from({ length: blocks.lanes }, () => ({
    plaintext: sharedBytes(blocks.maxPlaintextBytes),
    sealed: new Uint8Array(blocks.maxSealedBytes),
  }));
  const observe = hasher.thread === 'inline' ? (piece: Uint8Array) => hasher.hash.update(piece) : undefined;
  // An event at zero first: a progress display can show the phase and, later, a rate.
  options.onProgress?.({ phase: 'sealing', bytes: 0, total: blocks.plaintextLength });
  await runBlockPipeline(
    blocks.blockCount,
    lanes,
    {
      async read(index, lane) {
        const block = blocks.block(index);
        const read = await input.readInto(
          lane.plaintext.subarray(0, block.plaintextLength),
          block.plaintextOffset,
        );
        if (read < block.plaintextLength) {
          throw inputChanged(`it ended after ${String(block.plaintextOffset + read)} bytes`);
        }
      },
      process(index, lane) {
        const block = blocks.block(index);
        const plaintext = lane.plaintext.subarray(0, block.plaintextLength);
        // The worker hashes the block while this thread encrypts it.
        const hashed = hasher.thread === 'worker' ? hasher.worker.update(plaintext) : undefined;
        // Handled here too, in case encryption throws before settleAll() below takes it over.
        hashed?.catch(() => undefined);
        let from = 0;
        let to = 0;
        for (let chunk = block.firstChunk; chunk < block.endChunk; chunk++) {
          const length = blocks.chunkLength(chunk);
          encryptChunkInto(
            chunkKey,
            chunkNonce(plan.noncePrefix, chunk, chunk === blocks.chunkCount - 1),
            PLACEHOLDER_AAD,
            plaintext.subarray(from, from + length),
            lane.sealed.subarray(to, to + length),
            placeholderTags.subarray(chunk * GCM_TAG_LENGTH, (chunk + 1) * GCM_TAG_LENGTH),
            observe,
          );
          // The tag slot stays zero here; only the real tag is ever written to it.
          lane.sealed.fill(0, to + length, to + length + GCM_TAG_LENGTH);
          from += length;
          to += length + GCM_TAG_LENGTH;
        }
        const written = output.writeAt(lane.sealed.subarray(0, to), chunksOffset + block.sealedOffset);
        return settleAll([hashed, written]).then(() => {
          options.onProgress?.({
            phase: 'sealing',
            bytes: block.plaintextOffset + block.plaintextLength,
            total: blocks.plaintextLength,
          });
        });
      },
    },
    options.signal,
  );
}

/**
 * From this many chunks per block on (chunks of 64 KiB and smaller), a block's tags are put in
 * place by reading the block back, patching it and writing it once, instead of by one 16-byte
 * write per chunk: each small write costs some 10-20 µs, as much as moving tens of KiB.
 */
const REWRITE_BLOCK_MIN_CHUNKS = 64;

/** Moves every placeholder tag to the real AAD and writes it into its slot after the chunk's ciphertext. */
async function writeTags(
  output: AtomicOutputFile,
  sealing: Sealing,
  chunkKey: KeyObject,
  aad: Uint8Array,
  placeholderTags: Uint8Array,
): Promise<void> {
  const { plan, blocks } = sealing;
  const chunksOffset = plan.headerLength + HEADER_MAC_LENGTH;
  // The placeholder AAD is all zeros, so the XOR of the two AADs is the real one.
  const correction = new GcmAadCorrection(chunkKey, aad);
  const rewrite =
    blocks.chunksPerBlock >= REWRITE_BLOCK_MIN_CHUNKS ? new Uint8Array(blocks.maxSealedBytes) : undefined;
  try {
    for (let index = 0; index < blocks.blockCount; index++) {
      const block = blocks.block(index);
      const position = chunksOffset + block.sealedOffset;
      const sealed = rewrite?.subarray(0, block.sealedLength);
      if (sealed !== undefined) await output.readAt(sealed, position);
      const writes: Promise<void>[] = [];
      let slot = 0;
      for (let chunk = block.firstChunk; chunk < block.endChunk; chunk++) {
        const length = blocks.chunkLength(chunk);
        const tag = placeholderTags.subarray(chunk * GCM_TAG_LENGTH, (chunk + 1) * GCM_TAG_LENGTH);
        correction.correct(tag, length);
        slot += length;
        if (sealed === undefined) writes.push(output.writeAt(tag, position + slot));
        else sealed.set(tag, slot);
        slot += GCM_TAG_LENGTH;
      }
      if (sealed !== undefined) writes.push(output.writeAt(sealed, position));
      await settleAll(writes);
    }
  } finally {
    correction.dispose();
  }
}
