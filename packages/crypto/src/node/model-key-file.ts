import { open, type FileHandle } from 'node:fs/promises';
import { TresorError } from '@tresor/protocol';
import { MODEL_KEY_LENGTH, importModelKeyFile, type ModelKey } from '../sealed-model-key.js';
import { inputUnreadable } from './file-errors.js';

/** The longest valid key file: 64 hex digits and a newline. */
const MAX_KEY_FILE_LENGTH = 2 * MODEL_KEY_LENGTH + 1;

/**
 * Reads a key file (32 raw bytes, or 64 hex digits and an optional newline) and imports the key.
 * A larger file is refused from its size, unread; the bytes read are zeroed afterwards.
 */
export async function readModelKeyFile(path: string): Promise<ModelKey> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw inputUnreadable(path, cause);
  }
  const contents = new Uint8Array(MAX_KEY_FILE_LENGTH + 1);
  try {
    let length = 0;
    try {
      const stat = await handle.stat();
      if (!stat.isFile())
        throw new TresorError('INPUT_UNREADABLE', `cannot read key file ${path}: it is not a regular file`);
      if (stat.size > MAX_KEY_FILE_LENGTH) {
        throw new TresorError(
          'SEALED_MODEL_KEY_INVALID',
          `key file ${path} is ${String(stat.size)} bytes; a key file holds 32 raw bytes or 64 hex digits`,
        );
      }
      // One byte more than the limit, in case the file grew after stat().
      while (length < contents.length) {
        const { bytesRead } = await handle.read(contents, length, contents.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
    } catch (err) {
      throw err instanceof TresorError ? err : inputUnreadable(path, err);
    }
    return await importModelKeyFile(contents.subarray(0, length));
  } finally {
    contents.fill(0);
    await handle.close();
  }
}
