import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { writeFileAtomic } from '../atomic-file.js';
import { isKeyId, type KeyId } from '../key-id.js';
import { parseTenantId, type TenantId } from './tenant-id.js';

export const KEY_OWNERS_FILE = 'key-owners.json';

/**
 * Which tenant each key of the server's backing keystore belongs to (`<state dir>/key-owners.json`,
 * written only by the server). A key is usable only on behalf of its owner, so one tenant's
 * workload can never have another tenant's key used for it.
 */
export class KeyOwners {
  readonly #path: string;
  #owners: Map<KeyId, TenantId>;
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(path: string, owners: Map<KeyId, TenantId>) {
    this.#path = path;
    this.#owners = owners;
  }

  static async load(stateDir: string): Promise<KeyOwners> {
    const path = join(stateDir, KEY_OWNERS_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      if ((cause as { code?: unknown }).code === 'ENOENT') return new KeyOwners(path, new Map());
      throw new TresorError('INPUT_UNREADABLE', `cannot read ${path}`, { cause });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new TresorError('CONFIG_INVALID', `${path} is not JSON`, { cause });
    }
    const keys = (json as { keys?: unknown } | null)?.keys;
    if (typeof keys !== 'object' || keys === null)
      throw new TresorError('CONFIG_INVALID', `${path} has no "keys" map`);
    const owners = new Map<KeyId, TenantId>();
    for (const [id, tenant] of Object.entries(keys as Record<string, unknown>)) {
      if (!isKeyId(id)) throw new TresorError('CONFIG_INVALID', `${path}: "${id}" is not a key id`);
      owners.set(id, parseTenantId(tenant));
    }
    return new KeyOwners(path, owners);
  }

  ownerOf(keyId: KeyId): TenantId | null {
    return this.#owners.get(keyId) ?? null;
  }

  keysOf(tenant: TenantId): KeyId[] {
    return [...this.#owners].filter(([, owner]) => owner === tenant).map(([id]) => id);
  }

  async assign(keyId: KeyId, tenant: TenantId): Promise<void> {
    const run = async (): Promise<void> => {
      const next = new Map(this.#owners);
      next.set(keyId, tenant);
      await writeFileAtomic(this.#path, `${JSON.stringify({ keys: Object.fromEntries(next) }, null, 2)}\n`);
      this.#owners = next;
    };
    const done = this.#writes.then(run, run);
    this.#writes = done.catch(() => undefined);
    return done;
  }
}
