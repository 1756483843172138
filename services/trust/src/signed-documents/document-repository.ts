import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@tresor/keystore';
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

  /** Replaced atomically (temp file, fsync, rename, directory fsync): a crash leaves the old or the new document. */
  async save(jws: string): Promise<void> {
    await writeFileAtomic(this.#path, `${jws}\n`, 0o644);
  }
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}
