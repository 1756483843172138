import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TresorError } from '@tresor/protocol';

/**
 * Replaces `path` atomically with `text`: write a temp file in the same directory (mode 0600, readable
 * by its owner only, unless `mode` says otherwise — e.g. 0644 for signed public documents), fsync it,
 * rename it over the target (atomic on POSIX file systems), fsync the directory so the rename itself
 * survives a crash. Readers see the old or the new file, never a mix.
 */
export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (cause) {
    await unlink(temp).catch(() => undefined);
    throw new TresorError('OUTPUT_UNWRITABLE', `cannot write ${path}`, { cause });
  }
}
