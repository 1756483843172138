import { randomBytes } from 'node:crypto';
import { link, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { errnoCode, outputUnwritable } from './file-errors.js';

export interface AtomicOutputOptions {
  /** Replace an existing file at the target path; without it an existing target is refused. */
  readonly force?: boolean;
  /** Permission bits of the new file (before umask). Plaintext models should stay 0o600. */
  readonly mode?: number;
  /** fsync before the rename, so a power loss cannot leave a renamed but incomplete file. */
  readonly durable?: boolean;
}

function refuseExisting(target: string): TresorError {
  return new TresorError('USAGE_INVALID', `${target} already exists; pass --force to overwrite it`);
}

/**
 * An output written to a temporary file beside its target and renamed over it only on success:
 * a failed or interrupted run leaves either the old target or nothing, never a partial file.
 * The temporary name starts with a dot and ends in `.partial`, so a copy left by SIGKILL or a
 * power loss is recognisable.
 */
export class AtomicOutputFile {
  readonly target: string;
  readonly temporary: string;
  readonly #handle: FileHandle;
  readonly #options: AtomicOutputOptions;
  #settled = false;

  private constructor(target: string, temporary: string, handle: FileHandle, options: AtomicOutputOptions) {
    this.target = target;
    this.temporary = temporary;
    this.#handle = handle;
    this.#options = options;
  }

  static async create(target: string, options: AtomicOutputOptions = {}): Promise<AtomicOutputFile> {
    if (options.force !== true && (await exists(target))) throw refuseExisting(target);
    const temporary = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.partial`);
    try {
      // 'wx+': never follow or reuse an existing path (a planted symlink cannot redirect the
      // output); readable too, so a writer can patch what it wrote (readAt).
      const handle = await open(temporary, 'wx+', options.mode ?? 0o600);
      return new AtomicOutputFile(target, temporary, handle, options);
    } catch (cause) {
      throw outputUnwritable(target, cause);
    }
  }

  /**
   * Writes all of `bytes` at `position`. Positioned writes may be in flight together, so file I/O
   * overlaps the cryptography, and a file can be written out of order (the sealer writes its
   * header last).
   */
  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    try {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await this.#handle.write(
          bytes,
          written,
          bytes.length - written,
          position + written,
        );
        written += bytesWritten;
      }
    } catch (cause) {
      throw outputUnwritable(this.target, cause);
    }
  }

  /** Reads back `target.length` bytes written earlier at `position`. */
  async readAt(target: Uint8Array, position: number): Promise<void> {
    let filled = 0;
    try {
      while (filled < target.length) {
        const { bytesRead } = await this.#handle.read(
          target,
          filled,
          target.length - filled,
          position + filled,
        );
        if (bytesRead === 0) throw new Error(`the file ends at ${String(position + filled)}`);
        filled += bytesRead;
      }
    } catch (cause) {
      throw outputUnwritable(this.target, cause);
    }
  }

  /** Makes the output visible at the target path; the temporary file is gone afterwards. */
  async commit(): Promise<void> {
    this.#settled = true;
    try {
      if (this.#options.durable === true) await this.#handle.sync();
      await this.#handle.close();
      if (this.#options.force === true) {
        await rename(this.temporary, this.target);
      } else {
        await publishWithoutReplacing(this.temporary, this.target);
      }
    } catch (cause) {
      await unlink(this.temporary).catch(() => undefined);
      if (cause instanceof TresorError) throw cause;
      if (errnoCode(cause) === 'EEXIST') throw refuseExisting(this.target);
      throw outputUnwritable(this.target, cause);
    }
  }

  /** Removes the temporary file; safe to call after commit() or more than once. */
  async discard(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    await this.#handle.close().catch(() => undefined);
    await unlink(this.temporary).catch(() => undefined);
  }
}

/**
 * link() fails with EEXIST if the target appeared while we worked, where rename() would silently
 * replace it. File systems without hard links (FAT, some FUSE mounts) fall back to check-then-rename.
 */
async function publishWithoutReplacing(temporary: string, target: string): Promise<void> {
  try {
    await link(temporary, target);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw err;
    if (await exists(target)) throw refuseExisting(target);
    await rename(temporary, target);
    return;
  }
  await unlink(temporary);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw outputUnwritable(path, err);
  }
}
