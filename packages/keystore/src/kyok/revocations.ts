import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { writeFileAtomic } from '../atomic-file.js';
import { parseTenantId, type TenantId } from './tenant-id.js';

export const REVOCATIONS_FILE = 'revocations.json';

/**
 * The customer's revocations, in `<state dir>/revocations.json`: tenant → time of revocation. Written
 * by `tresor kyok revoke|reinstate` on the key server's machine or through the admin endpoint, and
 * re-read by the server whenever the file changed (checked on every key operation by inode, size and
 * mtime — a rename always yields a new inode), so a revocation holds from the next request on.
 * A file that cannot be read or parsed refuses every key operation (fail closed).
 */
export class RevocationList {
  readonly #path: string;
  readonly #now: () => Date;
  #stamp = '';
  #revoked: ReadonlyMap<TenantId, string> = new Map();

  constructor(stateDir: string, now: () => Date = () => new Date()) {
    this.#path = join(stateDir, REVOCATIONS_FILE);
    this.#now = now;
  }

  async isRevoked(tenant: TenantId): Promise<boolean> {
    await this.#refresh();
    return this.#revoked.has(tenant);
  }

  async revokedAt(tenant: TenantId): Promise<string | null> {
    await this.#refresh();
    return this.#revoked.get(tenant) ?? null;
  }

  /** Revokes `tenant`; returns false if it already was. */
  async revoke(tenant: TenantId): Promise<boolean> {
    await this.#refresh();
    if (this.#revoked.has(tenant)) return false;
    const next = new Map(this.#revoked);
    next.set(tenant, this.#now().toISOString());
    await this.#write(next);
    return true;
  }

  /** Lifts the revocation of `tenant`; returns false if it was not revoked. */
  async reinstate(tenant: TenantId): Promise<boolean> {
    await this.#refresh();
    if (!this.#revoked.has(tenant)) return false;
    const next = new Map(this.#revoked);
    next.delete(tenant);
    await this.#write(next);
    return true;
  }

  async #write(revoked: ReadonlyMap<TenantId, string>): Promise<void> {
    await mkdir(join(this.#path, '..'), { recursive: true, mode: 0o700 });
    await writeFileAtomic(
      this.#path,
      `${JSON.stringify({ revoked: Object.fromEntries(revoked) }, null, 2)}\n`,
    );
    this.#stamp = '';
    await this.#refresh();
  }

  async #refresh(): Promise<void> {
    let stamp: string;
    try {
      const info = await stat(this.#path);
      stamp = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch (cause) {
      if ((cause as { code?: unknown }).code !== 'ENOENT') throw unreadable(this.#path, cause);
      this.#stamp = 'absent';
      this.#revoked = new Map();
      return;
    }
    if (stamp === this.#stamp) return;
    let json: unknown;
    try {
      json = JSON.parse(await readFile(this.#path, 'utf8'));
    } catch (cause) {
      throw unreadable(this.#path, cause);
    }
    const revoked = (json as { revoked?: unknown } | null)?.revoked;
    if (typeof revoked !== 'object' || revoked === null || Array.isArray(revoked))
      throw unreadable(this.#path);
    const entries = new Map<TenantId, string>();
    for (const [tenant, at] of Object.entries(revoked as Record<string, unknown>)) {
      if (typeof at !== 'string') throw unreadable(this.#path);
      entries.set(parseTenantId(tenant), at);
    }
    this.#revoked = entries;
    this.#stamp = stamp;
  }
}

function unreadable(path: string, cause?: unknown): TresorError {
  return new TresorError(
    'KEYSTORE_UNAVAILABLE',
    `the revocation list ${path} is unreadable; refusing key operations`,
    {
      cause,
    },
  );
}
