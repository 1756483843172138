import { chmod, lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';

/**
 * The folder decrypted models pass through on their way into the engine: a tmpfs inside the TEE
 * in production, a private temporary folder in local mode. It is owned by this process's user,
 * mode 0700, and emptied when the replica starts (a crash may have left plaintext behind) and
 * when it stops.
 */
export class PrivateWorkDir {
  readonly path: string;
  readonly #created: boolean;

  private constructor(path: string, created: boolean) {
    this.path = path;
    this.#created = created;
  }

  /** Opens (creating when missing) and wipes `path`; a fresh private temp folder when omitted. */
  static async open(path?: string): Promise<PrivateWorkDir> {
    if (path === undefined) {
      const created = await mkdtemp(join(tmpdir(), 'tresor-serving-'));
      await chmod(created, 0o700);
      return new PrivateWorkDir(created, true);
    }
    try {
      await mkdir(path, { recursive: true, mode: 0o700 });
      const info = await lstat(path);
      if (!info.isDirectory() || info.isSymbolicLink()) {
        throw new TresorError('CONFIG_INVALID', `workDir ${path} is not a directory`);
      }
      const uid = process.getuid?.();
      if (uid !== undefined && info.uid !== uid) {
        throw new TresorError('CONFIG_INVALID', `workDir ${path} belongs to another user`);
      }
      await chmod(path, 0o700);
    } catch (cause) {
      if (cause instanceof TresorError) throw cause;
      throw new TresorError('CONFIG_INVALID', `cannot prepare the workDir ${path}`, { cause });
    }
    const dir = new PrivateWorkDir(path, false);
    await dir.wipe();
    return dir;
  }

  /** Removes everything inside the folder. */
  async wipe(): Promise<void> {
    const entries = await readdir(this.path).catch(() => []);
    await Promise.all(entries.map((name) => rm(join(this.path, name), { recursive: true, force: true })));
  }

  /** Wipes the folder, and removes it when this process created it. */
  async close(): Promise<void> {
    await this.wipe();
    if (this.#created) await rm(this.path, { recursive: true, force: true });
  }
}
