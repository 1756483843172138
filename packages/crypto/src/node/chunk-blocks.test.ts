import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GCM_TAG_LENGTH, MAX_CHUNK_SIZE, chunkCount, chunkPlaintextLength } from '../sealed-model-format.js';
import { ChunkBlocks } from './chunk-blocks.js';

describe('ChunkBlocks', () => {
  it('tiles every chunk exactly once, in order, contiguous in the plaintext and in the sealed file', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: MAX_CHUNK_SIZE })),
        (plaintextLength, chunkSize) => {
          const header = { chunkSize, plaintextLength };
          const blocks = new ChunkBlocks(header);
          const count = chunkCount(plaintextLength, chunkSize);
          expect(blocks.chunkCount).toBe(count);
          expect(blocks.lanes).toBeGreaterThanOrEqual(2);
          // Checks the first and last two blocks (a model can have millions).
          const indexes = [...new Set([0, 1, blocks.blockCount - 2, blocks.blockCount - 1])].filter(
            (i) => i >= 0 && i < blocks.blockCount,
          );
          for (const index of indexes) {
            const block = blocks.block(index);
            const chunks = block.endChunk - block.firstChunk;
            expect(chunks).toBeGreaterThanOrEqual(1);
            expect(block.plaintextOffset).toBe(block.firstChunk * chunkSize);
            expect(block.sealedOffset).toBe(block.firstChunk * (chunkSize + GCM_TAG_LENGTH));
            expect(block.sealedLength).toBe(block.plaintextLength + chunks * GCM_TAG_LENGTH);
            expect(block.plaintextLength).toBeLessThanOrEqual(blocks.maxPlaintextBytes);
            expect(block.sealedLength).toBeLessThanOrEqual(blocks.maxSealedBytes);
            for (const chunk of [block.firstChunk, block.endChunk - 1]) {
              expect(blocks.chunkLength(chunk)).toBe(chunkPlaintextLength(header, chunk));
            }
            const lengths =
              (block.endChunk - block.firstChunk - 1) * chunkSize + blocks.chunkLength(block.endChunk - 1);
            expect(block.plaintextLength).toBe(lengths);
            if (index + 1 < blocks.blockCount)
              expect(blocks.block(index + 1).firstChunk).toBe(block.endChunk);
          }
          expect(blocks.block(blocks.blockCount - 1).endChunk).toBe(count);
          expect(
            blocks.block(blocks.blockCount - 1).plaintextOffset +
              blocks.block(blocks.blockCount - 1).plaintextLength,
          ).toBe(plaintextLength);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('groups 4 MiB chunks one per block, small chunks up to 4 MiB or 4096 per block, and an empty model into one block', () => {
    const mib = 1024 * 1024;
    expect(new ChunkBlocks({ chunkSize: 4 * mib, plaintextLength: 256 * mib })).toMatchObject({
      chunksPerBlock: 1,
      blockCount: 64,
      lanes: 3,
      maxPlaintextBytes: 4 * mib,
    });
    expect(new ChunkBlocks({ chunkSize: 64 * 1024, plaintextLength: 256 * mib })).toMatchObject({
      chunksPerBlock: 64,
      blockCount: 64,
    });
    expect(new ChunkBlocks({ chunkSize: 64, plaintextLength: 8 * mib })).toMatchObject({
      chunksPerBlock: 4096,
      blockCount: 32,
    });
    expect(new ChunkBlocks({ chunkSize: 64 * mib, plaintextLength: 256 * mib })).toMatchObject({
      chunksPerBlock: 1,
      lanes: 2,
    });
    const empty = new ChunkBlocks({ chunkSize: 4 * mib, plaintextLength: 0 });
    expect(empty).toMatchObject({ chunkCount: 1, blockCount: 1, maxPlaintextBytes: 0, maxSealedBytes: 16 });
    expect(empty.block(0)).toEqual({
      index: 0,
      firstChunk: 0,
      endChunk: 1,
      plaintextOffset: 0,
      plaintextLength: 0,
      sealedOffset: 0,
      sealedLength: 16,
    });
  });
});
