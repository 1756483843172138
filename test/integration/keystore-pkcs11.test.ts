import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11KeyStore, SecretKeyBytes, aesKeyUnwrap, wrapKeyForImport } from '@tresor/keystore';
import {
  expectCode,
  keyStoreConformance,
} from '../../packages/keystore/src/conformance/key-store-conformance.js';
import {
  SOFTHSM_MODULE,
  createSoftHsmToken,
  wrapWithOpenssl,
  type SoftHsmToken,
} from './keystore-support.js';

let token: SoftHsmToken;
beforeAll(async () => {
  token = await createSoftHsmToken();
});
afterAll(async () => {
  await rm(token.dir, { recursive: true, force: true });
});

const open = (pin: SecretKeyBytes = token.pin()): Promise<Pkcs11KeyStore> =>
  Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, tokenLabel: token.label, pin });
const wrongPin = (): SecretKeyBytes => SecretKeyBytes.copyOf(Buffer.from('9999'));

keyStoreConformance('pkcs11 (SoftHSM2)', () => open());

describe('pkcs11 keystore on SoftHSM2', () => {
  it('refuses a wrong PIN, an unknown token and a missing module with specific codes', async () => {
    await expectCode(open(wrongPin()), 'KEYSTORE_AUTH_FAILED');
    await expectCode(
      Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, tokenLabel: 'no such token', pin: token.pin() }),
      'KEYSTORE_UNAVAILABLE',
    );
    await expectCode(
      Pkcs11KeyStore.open({ module: '/nonexistent/libpkcs11.so', tokenLabel: token.label, pin: token.pin() }),
      'KEYSTORE_UNAVAILABLE',
    );
  });

  it('refuses a wrong PIN while another store of the process is logged in to the token', async () => {
    // The token does not check the PIN then (CKR_USER_ALREADY_LOGGED_IN); the store must.
    const a = await open();
    try {
      await expectCode(open(wrongPin()), 'KEYSTORE_AUTH_FAILED');
      const b = await open();
      const kek = await b.createKek();
      expect((await a.describe(kek.id)).kind).toBe('kek');
      await b.close();
    } finally {
      await a.close();
    }
  });

  it('keeps working after the caller disposes the PIN it opened with', async () => {
    const pin = token.pin();
    const store = await open(pin);
    pin.dispose();
    const kek = await store.createKek();
    (await store.unwrapKey(await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32))))).dispose();
    await store.close();
    await expectCode(store.describe(kek.id), 'KEYSTORE_UNAVAILABLE');
  });

  it('keeps keys across sessions and shares the module between stores', async () => {
    const a = await open();
    const b = await open();
    const kek = await a.createKek({ label: 'shared' });
    const wrapped = await a.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    await a.close();
    (await b.unwrapKey(wrapped)).dispose();
    expect((await b.describe(kek.id)).label).toBe('shared');
    await b.close();
  });

  it('imports a KEK wrapped by the openssl CLI, unwrapping inside the token', async () => {
    const store = await open();
    const params = await store.importParameters();
    // SoftHSM 2.6 OAEP supports SHA-1 only, so it advertises the SHA-1 variant of the scheme.
    expect(params.wrappingAlgorithm).toBe('RSA_AES_KEY_WRAP_SHA_1');
    const kek = randomBytes(32);
    const payload = await wrapWithOpenssl(params, kek, join(token.dir, 'openssl'));
    const meta = await store.importKek(payload, { label: 'from openssl' });
    expect(meta).toMatchObject({ origin: 'imported', kind: 'kek', label: 'from openssl' });
    const dataKey = randomBytes(32);
    const wrapped = await store.wrapKey(meta.id, SecretKeyBytes.copyOf(dataKey));
    expect(Buffer.from(aesKeyUnwrap(kek, wrapped.ciphertext)).equals(dataKey)).toBe(true);
    // A key wrapped with the SHA-256 variant the token cannot unwrap is refused, not mis-imported.
    const sha256 = await wrapWithOpenssl(
      { ...params, wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256' },
      kek,
      join(token.dir, 'openssl256'),
    );
    await expectCode(store.importKek(sha256), 'KEY_IMPORT_INVALID');
    await store.close();
  });

  it('never lets a KEK be read out of the token', async () => {
    const store = await open();
    const params = await store.importParameters();
    const meta = await store.importKek(wrapKeyForImport(params, SecretKeyBytes.copyOf(randomBytes(32))));
    const list = await store.list();
    expect(list.some((k) => k.id === meta.id)).toBe(true);
    expect(JSON.stringify(list)).not.toMatch(/value|material/i);
    await store.close();
  });
});
