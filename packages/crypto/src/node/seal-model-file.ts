/// <reference types="node" />
import { DEFAULT_CHUNK_SIZE, type SealedModelHeader } from '../sealed-model-format.js';
import { sealModel } from '../sealed-model-seal.js';
import { AtomicOutputFile } from './atomic-output.js';
import { drainInto } from './drain.js';
import { FileByteSource } from './file-source.js';
import type { ModelFileOptions } from './model-file-options.js';
import { nodeSha256 } from './sha256.js';

export interface SealModelFileOptions extends ModelFileOptions {
  /** Name under which the key is released (e.g. `kbs:///repo/type/tag`); default derived from the key. */
  readonly keyId?: string;
  readonly chunkSize?: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * Seals a model file into a `.tresor` file. Two passes over the input: the header (which every
 * chunk authenticates) records the plaintext SHA-256, so it is computed first; the second pass
 * hashes again and refuses with SEALED_MODEL_INPUT_CHANGED if the file changed in between.
 * The output appears at `options.output` only if everything succeeded.
 */
export async function sealModelFile(options: SealModelFileOptions): Promise<SealedModelHeader> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const hashing = await FileByteSource.open(options.input);
  try {
    const output = await AtomicOutputFile.create(options.output, {
      ...(options.force === undefined ? {} : { force: options.force }),
      durable: options.durable ?? true,
      mode: 0o644,
    });
    try {
      const { length, sha256 } = await hashSource(hashing, chunkSize, options);
      const sealing = await FileByteSource.open(options.input);
      try {
        const pieces = sealModel(sealing, {
          key: options.key,
          plaintextLength: length,
          plaintextSha256: sha256,
          chunkSize,
          sha256: nodeSha256,
          ...(options.keyId === undefined ? {} : { keyId: options.keyId }),
          ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
        });
        const header = await drainInto(
          pieces,
          output,
          () => options.onProgress?.({ phase: 'sealing', bytes: sealing.position, total: length }),
          options.signal,
        );
        // A signal that arrived after the last chunk still wins: nothing appears.
        options.signal?.throwIfAborted();
        await output.commit();
        return header;
      } finally {
        await sealing.close();
      }
    } finally {
      await output.discard();
    }
  } finally {
    await hashing.close();
  }
}

async function hashSource(
  source: FileByteSource,
  chunkSize: number,
  options: SealModelFileOptions,
): Promise<{ length: number; sha256: Uint8Array }> {
  const hasher = nodeSha256();
  const total = source.size;
  let length = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const bytes = await source.read(chunkSize);
    if (bytes.length === 0) break;
    hasher.update(bytes);
    length += bytes.length;
    options.onProgress?.({ phase: 'hashing', bytes: length, total });
  }
  return { length, sha256: hasher.digest() };
}
