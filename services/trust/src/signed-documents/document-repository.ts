import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TresorError } from '@tresor/protocol';

/**
 * Where the newest signed document is kept between restarts. Only the signed JWS is stored, so a
 * copy edited at rest no longer verifies when it is loaded (see SignedDocumentPublisher.open).
 */
export interface DocumentRepository {
  /** The stored JWS, or undefined when nothing was stored yet. */
  load(): Promise<string | undefined>;
  /** Replaces the stored JWS; once this resolves, a restart loads `jws`. */
  save(jws: string): Promise<void>;
}

/** Keeps the document in memory only (tests, throw-away local runs). */
export class MemoryDocumentRepository implements DocumentRepository {
  #jws: string | undefined;

  constructor(jws?: string) {
    this.#jws = jws;
  }

  load(): Promise<string | undefined> {
    return Promise.resolve(this.#jws);
  }

  save(jws: string): Promise<void> {
    this.#jws = jws;
    return Promise.resolve();
  }
}

/** Keeps the document in one file of the state directory, replaced atomically on every change. */
export class FileDocumentRepository implements DocumentRepository {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  async load(): Promise<string | undefined> {
    try {
      return (await readFile(this.#path, 'utf8')).trim();
    } catch (cause) {
      if (isNotFound(cause)) return undefined;
      throw new TresorError('INPUT_UNREADABLE', `cannot read ${this.#path}`, { cause });
    }
  }

  /**
   * Writes a temp file in the same directory, fsyncs it, renames it over the target (atomic on
   * POSIX file systems) and fsyncs the directory, so a crash leaves the old or the new document.
   */
  async save(jws: string): Promise<void> {
    const temp = join(dirname(this.#path), `.${basename(this.#path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(temp, 'wx', 0o644);
      try {
        await handle.writeFile(`${jws}\n`, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.#path);
      const dir = await open(dirname(this.#path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (cause) {
      await unlink(temp).catch(() => undefined);
      throw new TresorError('OUTPUT_UNWRITABLE', `cannot write ${this.#path}`, { cause });
    }
  }
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}
