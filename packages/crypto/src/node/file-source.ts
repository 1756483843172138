import { open, type FileHandle } from 'node:fs/promises';
import { TresorError } from '@tresor/protocol';
import type { ByteSource } from '../sealed-model-source.js';
import { inputUnreadable } from './file-errors.js';

/** Reads past the size seen at open are probed in small steps, so a huge request cannot allocate. */
const GROWTH_PROBE = 64 * 1024;

/**
 * A regular file as a ByteSource: each read goes straight into a buffer of its own (no
 * re-chunking copies) and never allocates more than the file holds, whatever length a header
 * asks for. The next read of the same length is started as soon as one completes, so disk I/O
 * overlaps the hashing and AES work of the previous chunk.
 */
export class FileByteSource implements ByteSource {
  readonly path: string;
  /** Size at open time. */
  readonly size: number;
  #position = 0;
  #ahead: { position: number; length: number; read: Promise<Uint8Array> } | undefined;
  readonly #handle: FileHandle;

  private constructor(path: string, handle: FileHandle, size: number) {
    this.path = path;
    this.#handle = handle;
    this.size = size;
  }

  /** Opens a regular file for reading; INPUT_UNREADABLE if it is missing, unreadable or not a file. */
  static async open(path: string): Promise<FileByteSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (cause) {
      throw inputUnreadable(path, cause);
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) {
        throw new TresorError('INPUT_UNREADABLE', `cannot read ${path}: it is not a regular file`);
      }
      return new FileByteSource(path, handle, stat.size);
    } catch (err) {
      await handle.close();
      throw err instanceof TresorError ? err : inputUnreadable(path, err);
    }
  }

  /** Bytes handed out so far. */
  get position(): number {
    return this.#position;
  }

  /** Bytes not yet read, by the size seen at open. */
  get remaining(): number {
    return Math.max(0, this.size - this.#position);
  }

  async read(length: number): Promise<Uint8Array> {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    const bytes =
      ahead?.position === this.#position && ahead.length === length
        ? await ahead.read
        : await this.#readAt(this.#position, length);
    this.#position += bytes.length;
    if (bytes.length === length && this.remaining > 0) {
      const read = this.#readAt(this.#position, length);
      read.catch(() => undefined);
      this.#ahead = { position: this.#position, length, read };
    }
    return bytes;
  }

  /**
   * Reads into `target` from `position` (positioned, independent of `read()`'s cursor), until it
   * is full or the file ends; returns the bytes read. For large reads into reused buffers.
   */
  async readInto(target: Uint8Array, position: number): Promise<number> {
    let filled = 0;
    try {
      while (filled < target.length) {
        const { bytesRead } = await this.#handle.read(
          target,
          filled,
          target.length - filled,
          position + filled,
        );
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
    } catch (cause) {
      throw inputUnreadable(this.path, cause);
    }
    return filled;
  }

  /**
   * Size, inode and modification and change times (ns) as one comparable string. Any write
   * between two calls changes it: Linux gives a changed file a fresh time once its times were
   * read (fine-grained timestamps since 6.13; older kernels tick in jiffies, so a write within a
   * few milliseconds of the previous one can keep the old times).
   */
  async changeStamp(): Promise<string> {
    try {
      const stat = await this.#handle.stat({ bigint: true });
      return `${String(stat.size)}:${String(stat.ino)}:${String(stat.mtimeNs)}:${String(stat.ctimeNs)}`;
    } catch (cause) {
      throw inputUnreadable(this.path, cause);
    }
  }

  async close(): Promise<void> {
    await this.#ahead?.read.catch(() => undefined);
    this.#ahead = undefined;
    await this.#handle.close();
  }

  async #readAt(position: number, length: number): Promise<Uint8Array> {
    const wanted = Math.min(length, this.size > position ? this.size - position : GROWTH_PROBE);
    // Not zero-filled: every byte handed out is overwritten by the read (a short read is cut off).
    const buffer = Buffer.allocUnsafeSlow(wanted);
    const filled = await this.readInto(buffer, position);
    return filled === wanted ? buffer : buffer.subarray(0, filled);
  }
}
