import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wrapKeyForImport } from './byok.js';
import { expectCode } from './conformance/key-store-conformance.js';
import { EnvelopeCipher } from './envelope.js';
import { FileKeyStore } from './file/file-key-store.js';
import { deriveSealingKey, openEnvelope, parseEnvelope } from './file/sealed-file.js';
import { SecretKeyBytes } from './secret-key-bytes.js';

let dir: string;
let store: FileKeyStore;
const passphrase = (): SecretKeyBytes => SecretKeyBytes.copyOf(Buffer.from('envelope test passphrase'));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-envelope-'));
  store = await FileKeyStore.open({
    path: join(dir, 'keys.json'),
    passphrase: passphrase(),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function tenantCipher(): Promise<EnvelopeCipher> {
  const kek = await store.createKek({ label: 'tenant' });
  return new EnvelopeCipher(store, await EnvelopeCipher.newDataKey(store, kek.id));
}

describe('EnvelopeCipher', () => {
  it('round-trips fields of any content (property)', async () => {
    const cipher = await tenantCipher();
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.uint8Array({ maxLength: 200 }),
        async (id, value) => {
          const sealed = await cipher.encryptField(id, value);
          expect(sealed.length).toBe(value.length + 29);
          expect(sealed[0]).toBe(1);
          expect(Buffer.from(await cipher.decryptField(id, sealed)).equals(Buffer.from(value))).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('uses a fresh nonce for every encryption', async () => {
    const cipher = await tenantCipher();
    const a = await cipher.encryptField('r1', new Uint8Array(16));
    const b = await cipher.encryptField('r1', new Uint8Array(16));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('refuses every modified byte and any other record id with ENCRYPTED_FIELD_INVALID (property)', async () => {
    const cipher = await tenantCipher();
    const sealed = await cipher.encryptField('tenant-1/api-key-7', Buffer.from('sk-live-secret'));
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: sealed.length * 8 - 1 }), async (bit) => {
        const copy = Uint8Array.from(sealed);
        copy[bit >> 3]! ^= 1 << (bit & 7);
        await expectCode(cipher.decryptField('tenant-1/api-key-7', copy), 'ENCRYPTED_FIELD_INVALID');
      }),
      { numRuns: 1000 },
    );
    await expectCode(cipher.decryptField('tenant-1/api-key-8', sealed), 'ENCRYPTED_FIELD_INVALID');
    await expectCode(
      cipher.decryptField('tenant-1/api-key-7', sealed.subarray(0, 28)),
      'ENCRYPTED_FIELD_INVALID',
    );
    await expectCode(cipher.encryptField('', new Uint8Array(1)), 'USAGE_INVALID');
  });

  it("keeps tenants apart: another tenant's data key cannot read a field", async () => {
    const a = await tenantCipher();
    const b = await tenantCipher();
    const sealed = await a.encryptField('shared-id', Buffer.from('tenant A secret'));
    await expectCode(b.decryptField('shared-id', sealed), 'ENCRYPTED_FIELD_INVALID');
  });

  it('stops at once when the KEK is disabled, and resumes when it is enabled', async () => {
    const cipher = await tenantCipher();
    const sealed = await cipher.encryptField('r', Buffer.from('v'));
    await store.disable(cipher.wrappedDataKey.kekId);
    await expectCode(cipher.decryptField('r', sealed), 'KEY_DISABLED');
    await store.enable(cipher.wrappedDataKey.kekId);
    expect(Buffer.from(await cipher.decryptField('r', sealed)).toString()).toBe('v');
  });
});

describe('crypto-shredding', () => {
  it("destroying a tenant's KEK makes all its stored data unreadable, also after a restart", async () => {
    // A BYOK key, so the test knows the KEK bytes and can prove they left the keystore file.
    const kekBytes = randomBytes(32);
    const kek = await store.importKek(
      wrapKeyForImport(await store.importParameters(), SecretKeyBytes.copyOf(kekBytes)),
    );
    const cipher = new EnvelopeCipher(store, await EnvelopeCipher.newDataKey(store, kek.id));
    const rows = await Promise.all(
      ['model-key', 'secret/openai', 'column/email'].map(async (id) => ({
        id,
        sealed: await cipher.encryptField(id, Buffer.from(`value of ${id}`)),
      })),
    );
    for (const row of rows)
      expect(Buffer.from(await cipher.decryptField(row.id, row.sealed)).toString()).toBe(
        `value of ${row.id}`,
      );

    await store.destroy(kek.id);
    for (const row of rows) await expectCode(cipher.decryptField(row.id, row.sealed), 'KEY_DESTROYED');
    await expectCode(cipher.encryptField('new', Buffer.from('x')), 'KEY_DESTROYED');

    // After a restart the key is still gone, and the sealed keystore file no longer contains it.
    const path = join(dir, 'keys.json');
    const reopened = await FileKeyStore.open({ path, passphrase: passphrase(), mode: 'development' });
    const again = new EnvelopeCipher(reopened, cipher.wrappedDataKey);
    for (const row of rows) await expectCode(again.decryptField(row.id, row.sealed), 'KEY_DESTROYED');
    await reopened.close();
    const envelope = parseEnvelope(await readFile(path, 'utf8'));
    const sealing = await deriveSealingKey(passphrase(), envelope.kdf);
    const plaintext = Buffer.from(openEnvelope(envelope, sealing));
    expect(plaintext.includes(Buffer.from(kekBytes.toString('base64')))).toBe(false);
    expect(plaintext.toString()).toContain(kek.id);
    sealing.key.dispose();
  });
});
