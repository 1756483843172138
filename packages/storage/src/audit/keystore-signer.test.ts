import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8Encode } from '@tresor/crypto';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import { checkpointSigningInput } from './audit-checkpoint.js';
import { CheckpointKeys } from './checkpoint-keys.js';
import { keyStoreCheckpointSigner } from './keystore-signer.js';

describe('keyStoreCheckpointSigner over the file keystore', () => {
  let dir: string;
  let store: FileKeyStore;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tresor-audit-signer-'));
    store = await FileKeyStore.open({
      path: join(dir, 'keys.json'),
      passphrase: SecretKeyBytes.copyOf(utf8Encode('audit signer test passphrase')),
      mode: 'development',
      createIfMissing: true,
      scryptLog2N: 14,
    });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['ES256', 'ES384'] as const)(
    'signs %s checkpoints that verify with the published public key',
    async (algorithm) => {
      const key = await store.createSigningKey(algorithm, { label: 'audit checkpoints' });
      const signer = await keyStoreCheckpointSigner(store, key.id);
      expect(signer).toMatchObject({
        keyId: key.id,
        algorithm,
        publicJwk: { kty: 'EC', kid: key.id, alg: algorithm },
      });
      expect(JSON.stringify(signer.publicJwk)).not.toContain('"d"');
      const statement = {
        kind: 'periodic' as const,
        count: 3,
        head: '1'.repeat(64),
        time: '2025-01-01T00:00:00.000Z',
        keyId: signer.keyId,
        algorithm,
      };
      const checkpoint = { ...statement, signature: await signer.sign(checkpointSigningInput(statement)) };
      expect(CheckpointKeys.fromJwks([signer.publicJwk]).problemWith(checkpoint)).toBeUndefined();
    },
  );

  it('refuses a key-encryption key, and stops signing once the key is destroyed', async () => {
    const kek = await store.createKek();
    await expect(keyStoreCheckpointSigner(store, kek.id)).rejects.toMatchObject({
      code: 'KEY_USAGE_INVALID',
    });
    const key = await store.createSigningKey('ES256');
    const signer = await keyStoreCheckpointSigner(store, key.id);
    await store.destroy(key.id);
    await expect(signer.sign(new Uint8Array(1))).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
  });
});
