import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { AtomicOutputFile } from '@tresor/crypto/node';

/**
 * The directory the fetcher fills: one file per collateral document, named after the request
 * (product, chip ID and TCB, FMSPC, RIM ID), in the formats `tresor attest verify` reads. It is the
 * cache too: a file still within its own validity is used instead of the network.
 *
 * Writes go to a temporary file beside the target and are renamed over it only when complete
 * (AtomicOutputFile), so a failed or interrupted fetch leaves the previous file or none, never a
 * partial one that a later verification would misread.
 */
export class CollateralDirectory {
  constructor(
    readonly path: string,
    /** Cached files larger than this are not read (a response that large was never accepted). */
    private readonly maxFileBytes: number,
  ) {}

  pathOf(name: string): string {
    return join(this.path, name);
  }

  /** The cached file, or undefined when there is none usable (missing, unreadable, oversized). */
  async read(name: string): Promise<Uint8Array | undefined> {
    const path = this.pathOf(name);
    try {
      const info = await stat(path);
      if (!info.isFile() || info.size > this.maxFileBytes) return undefined;
      return new Uint8Array(await readFile(path));
    } catch {
      // Whatever stands in the way of reading it, the document is fetched again and replaces it.
      return undefined;
    }
  }

  /** Writes `bytes` as `name`, replacing any previous file atomically; returns the path. */
  async write(name: string, bytes: Uint8Array): Promise<string> {
    try {
      await mkdir(this.path, { recursive: true });
    } catch (cause) {
      throw new TresorError('OUTPUT_UNWRITABLE', `cannot create the collateral directory ${this.path}`, {
        cause,
      });
    }
    // Collateral is public vendor data, readable by whoever verifies with it.
    const file = await AtomicOutputFile.create(this.pathOf(name), { force: true, mode: 0o644 });
    try {
      await file.writeAt(bytes, 0);
      await file.commit();
    } catch (cause) {
      await file.discard();
      throw cause;
    }
    return file.target;
  }
}
