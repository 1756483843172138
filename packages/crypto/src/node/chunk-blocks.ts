import { GCM_TAG_LENGTH, chunkCount, chunkPlaintextLength } from '../sealed-model-format.js';

/** Plaintext bytes per block that the file helpers aim for: one read, one write, one hash message. */
const BLOCK_TARGET_BYTES = 4 * 1024 * 1024;
/** Bounds the synchronous work per block for tiny chunks, so signals and I/O are served between blocks. */
const MAX_CHUNKS_PER_BLOCK = 4096;
/** Blocks in flight (one being read, one being encrypted, one being written and hashed)... */
const LANES = 3;
/** ...unless blocks are large (chunks of 16 MiB and more), where two bound the memory. */
const LARGE_BLOCK_BYTES = 16 * 1024 * 1024;

/** One block: chunks [firstChunk, endChunk), contiguous both in the plaintext and in the sealed file. */
export interface ChunkBlock {
  readonly index: number;
  readonly firstChunk: number;
  readonly endChunk: number;
  /** Offset of the block's plaintext in the model. */
  readonly plaintextOffset: number;
  readonly plaintextLength: number;
  /** Offset of the block's first chunk from the start of the chunks (add the header block's length). */
  readonly sealedOffset: number;
  /** Plaintext plus one tag per chunk. */
  readonly sealedLength: number;
}

/**
 * How a model's chunks are grouped into blocks for file I/O: whole chunks only (a chunk's tag
 * must verify before any of it is released), about 4 MiB per block.
 */
export class ChunkBlocks {
  readonly chunkSize: number;
  readonly plaintextLength: number;
  readonly chunkCount: number;
  readonly chunksPerBlock: number;
  readonly blockCount: number;
  /** Blocks in flight at once; each needs one block-sized buffer per direction. */
  readonly lanes: number;

  constructor(header: { readonly chunkSize: number; readonly plaintextLength: number }) {
    this.chunkSize = header.chunkSize;
    this.plaintextLength = header.plaintextLength;
    this.chunkCount = chunkCount(header.plaintextLength, header.chunkSize);
    this.chunksPerBlock = Math.max(
      1,
      Math.min(MAX_CHUNKS_PER_BLOCK, Math.floor(BLOCK_TARGET_BYTES / header.chunkSize)),
    );
    this.blockCount = Math.ceil(this.chunkCount / this.chunksPerBlock);
    this.lanes = this.maxPlaintextBytes >= LARGE_BLOCK_BYTES ? 2 : LANES;
  }

  /** The largest plaintext a block holds (less for a model smaller than one block). */
  get maxPlaintextBytes(): number {
    return Math.min(this.plaintextLength, this.chunksPerBlock * this.chunkSize);
  }

  /** The largest sealed length a block has. */
  get maxSealedBytes(): number {
    return this.maxPlaintextBytes + Math.min(this.chunkCount, this.chunksPerBlock) * GCM_TAG_LENGTH;
  }

  block(index: number): ChunkBlock {
    const firstChunk = index * this.chunksPerBlock;
    const endChunk = Math.min(this.chunkCount, firstChunk + this.chunksPerBlock);
    const plaintextOffset = firstChunk * this.chunkSize;
    const plaintextLength = Math.min(this.plaintextLength, endChunk * this.chunkSize) - plaintextOffset;
    return {
      index,
      firstChunk,
      endChunk,
      plaintextOffset,
      plaintextLength,
      sealedOffset: firstChunk * (this.chunkSize + GCM_TAG_LENGTH),
      sealedLength: plaintextLength + (endChunk - firstChunk) * GCM_TAG_LENGTH,
    };
  }

  chunkLength(index: number): number {
    return chunkPlaintextLength(this, index);
  }
}
