import type { SealedModelHeader } from '../sealed-model-format.js';
import { openSealedModel } from '../sealed-model-unseal.js';
import { FileByteSource } from './file-source.js';

export interface SealedModelFileInfo {
  readonly header: SealedModelHeader;
  /** Size of the file on disk. */
  readonly fileSize: number;
  /** Size the header says the file has; differs from fileSize when it was cut or extended. */
  readonly sealedSize: number;
}

/** Reads and validates the header of a `.tresor` file without a key; nothing in it is authenticated. */
export async function inspectSealedModelFile(path: string): Promise<SealedModelFileInfo> {
  const source = await FileByteSource.open(path);
  try {
    const sealed = await openSealedModel(source);
    return { header: sealed.header, fileSize: source.size, sealedSize: sealed.sealedSize };
  } finally {
    await source.close();
  }
}
