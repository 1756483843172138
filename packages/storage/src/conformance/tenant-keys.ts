import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utf8Encode } from '@tresor/crypto';
import { EnvelopeCipher, FileKeyStore, SecretKeyBytes, type KeyId } from '@tresor/keystore';
import type { FieldCipher, TenantFieldCiphers } from '../usage/field-cipher.js';

/** A file keystore for the sealed-column tests; opening one runs scrypt, so a suite shares it. */
export interface TestKeyStore {
  readonly store: FileKeyStore;
  close(): Promise<void>;
}

export async function openTestKeyStore(): Promise<TestKeyStore> {
  const dir = mkdtempSync(join(tmpdir(), 'tresor-tenant-keys-'));
  const store = await FileKeyStore.open({
    path: join(dir, 'keys.json'),
    passphrase: SecretKeyBytes.copyOf(utf8Encode('storage conformance passphrase')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Real customer keys: one KEK per tenant in the keystore and a data key wrapped under it, used
 * through the keystore's own envelope cipher. Each call makes fresh KEKs, so one test destroying
 * a tenant's KEK does not shred another test's data.
 */
export interface TenantKeys {
  readonly ciphers: TenantFieldCiphers;
  kekOf(tenant: string): Promise<KeyId>;
}

export function tenantKeys(store: FileKeyStore): TenantKeys {
  const tenants = new Map<string, Promise<{ kek: KeyId; cipher: FieldCipher }>>();
  const tenant = (name: string): Promise<{ kek: KeyId; cipher: FieldCipher }> => {
    let entry = tenants.get(name);
    if (entry === undefined) {
      entry = (async () => {
        const kek = (await store.createKek({ label: `tenant ${name}` })).id;
        return { kek, cipher: new EnvelopeCipher(store, await EnvelopeCipher.newDataKey(store, kek)) };
      })();
      tenants.set(name, entry);
    }
    return entry;
  };
  return {
    ciphers: async (name) => (await tenant(name)).cipher,
    kekOf: async (name) => (await tenant(name)).kek,
  };
}
