import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { bytesToHex } from '@tresor/crypto';
import { resourcePath, type ResourcePath } from './resource-path.js';

/**
 * Where sealed resources are kept. The repository only ever sees ciphertext (resource-store.ts
 * encrypts before writing) and the wrapped data key; neither is readable without the keystore.
 */
export interface ResourceRepository {
  read(path: ResourcePath): Promise<Uint8Array | undefined>;
  write(path: ResourcePath, sealed: Uint8Array): Promise<void>;
  /** False when nothing was stored at `path`. */
  remove(path: ResourcePath): Promise<boolean>;
  list(): Promise<readonly ResourcePath[]>;
  /** The wrapped data key (serialised), or undefined before the first resource. */
  readDataKey(): Promise<string | undefined>;
  writeDataKey(serialized: string): Promise<void>;
}

/** Keeps sealed resources in memory (tests, throwaway local runs). */
export class MemoryResourceRepository implements ResourceRepository {
  readonly #entries = new Map<string, { path: ResourcePath; sealed: Uint8Array }>();
  #dataKey: string | undefined;

  read(path: ResourcePath): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.#entries.get(path.text)?.sealed);
  }

  write(path: ResourcePath, sealed: Uint8Array): Promise<void> {
    this.#entries.set(path.text, { path, sealed: Uint8Array.from(sealed) });
    return Promise.resolve();
  }

  remove(path: ResourcePath): Promise<boolean> {
    return Promise.resolve(this.#entries.delete(path.text));
  }

  list(): Promise<readonly ResourcePath[]> {
    return Promise.resolve([...this.#entries.values()].map((e) => e.path));
  }

  readDataKey(): Promise<string | undefined> {
    return Promise.resolve(this.#dataKey);
  }

  writeDataKey(serialized: string): Promise<void> {
    this.#dataKey = serialized;
    return Promise.resolve();
  }
}

const DATA_KEY_FILE = 'data-key';
const RESOURCES_DIR = 'resources';

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TresorError('STORAGE_UNAVAILABLE', 'the resource directory cannot be read', { cause });
  }
}

/** Writes `bytes` to `file` atomically (temporary file, fsync, rename), readable by the owner only. */
async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${file}.${bytesToHex(randomBytes(8))}.tmp`;
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (cause) {
    await rm(temporary, { force: true });
    throw new TresorError('STORAGE_UNAVAILABLE', 'a sealed resource could not be written', { cause });
  }
}

/**
 * Keeps sealed resources as files: `<dir>/resources/<repository>/<type>/<tag>` (path segments are
 * restricted so they cannot leave the directory) and the wrapped data key in `<dir>/data-key`.
 */
export class FileResourceRepository implements ResourceRepository {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  #file(path: ResourcePath): string {
    return join(this.#dir, RESOURCES_DIR, path.repository, path.type, path.tag);
  }

  /**
   * Read on every release, so a resource removed or replaced is seen at once. Synchronously: a
   * sealed resource is at most 64 KiB from the page cache (tens of microseconds), where `readFile`
   * costs four thread-pool jobs and their wake-ups — more than the read itself.
   */
  read(path: ResourcePath): Promise<Uint8Array | undefined> {
    try {
      return Promise.resolve(new Uint8Array(readFileSync(this.#file(path))));
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve(undefined);
      return Promise.reject(
        new TresorError('STORAGE_UNAVAILABLE', 'the resource directory cannot be read', { cause }),
      );
    }
  }

  async write(path: ResourcePath, sealed: Uint8Array): Promise<void> {
    await mkdir(join(this.#dir, RESOURCES_DIR, path.repository, path.type), { recursive: true, mode: 0o700 });
    await writeAtomically(this.#file(path), sealed);
  }

  async remove(path: ResourcePath): Promise<boolean> {
    const existed = (await readOptional(this.#file(path))) !== undefined;
    await rm(this.#file(path), { force: true });
    return existed;
  }

  async list(): Promise<readonly ResourcePath[]> {
    const names = async (dir: string): Promise<string[]> => {
      try {
        return (await readdir(dir, { withFileTypes: true }))
          .filter((e) => !e.name.endsWith('.tmp'))
          .map((e) => e.name);
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new TresorError('STORAGE_UNAVAILABLE', 'the resource directory cannot be listed', { cause });
      }
    };
    const root = join(this.#dir, RESOURCES_DIR);
    const out: ResourcePath[] = [];
    for (const repository of await names(root)) {
      for (const type of await names(join(root, repository))) {
        for (const tag of await names(join(root, repository, type))) {
          out.push(resourcePath(repository, type, tag));
        }
      }
    }
    return out.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  }

  async readDataKey(): Promise<string | undefined> {
    return (await readOptional(join(this.#dir, DATA_KEY_FILE)))?.toString('utf8');
  }

  async writeDataKey(serialized: string): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await writeAtomically(join(this.#dir, DATA_KEY_FILE), new TextEncoder().encode(serialized));
  }
}
