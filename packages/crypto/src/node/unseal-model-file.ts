/// <reference types="node" />
import type { SealedModelHeader } from '../sealed-model-format.js';
import { openSealedModel } from '../sealed-model-unseal.js';
import { AtomicOutputFile } from './atomic-output.js';
import { drainInto } from './drain.js';
import { FileByteSource } from './file-source.js';
import type { ModelFileOptions } from './model-file-options.js';
import { nodeSha256 } from './sha256.js';

/**
 * Unseals a `.tresor` file. The plaintext goes to a temporary file (mode 0600) that is renamed
 * to `options.output` only after every chunk verified and the plaintext SHA-256 matched the header,
 * so nothing unverified is ever visible under the output name.
 */
export async function unsealModelFile(options: ModelFileOptions): Promise<SealedModelHeader> {
  const source = await FileByteSource.open(options.input);
  try {
    const sealed = await openSealedModel(source);
    const output = await AtomicOutputFile.create(options.output, {
      ...(options.force === undefined ? {} : { force: options.force }),
      durable: options.durable ?? true,
      mode: 0o600,
    });
    try {
      const total = sealed.header.plaintextLength;
      let bytes = 0;
      await drainInto(
        sealed.unseal(options.key, { sha256: nodeSha256 }),
        output,
        (length) => {
          bytes += length;
          options.onProgress?.({ phase: 'unsealing', bytes, total });
        },
        options.signal,
      );
      // A signal that arrived after the last chunk still wins: nothing appears.
      options.signal?.throwIfAborted();
      await output.commit();
      return sealed.header;
    } finally {
      await output.discard();
    }
  } finally {
    await source.close();
  }
}
