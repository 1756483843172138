import { createPublicKey, randomBytes, verify } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError, type ErrorCode } from '@tresor/protocol';
import { aesKeyUnwrap } from '../aes-key-wrap.js';
import { wrapKeyForImport } from '../byok.js';
import { curveFor } from '../ec-keys.js';
import { isKeyId, type KeyId } from '../key-id.js';
import type { KeyMetadata, KeyStore, SigningAlgorithm } from '../key-store.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';
import type { WrappedKey } from '../wrapped-key.js';

export interface ConformanceOptions {
  /** fast-check runs per property (at least 1000 in the project's suites). */
  readonly numRuns?: number;
}

/**
 * The one conformance suite every KeyStore backend runs (file in unit tests, pkcs11 against SoftHSM2
 * and kyok against the reference key server in integration tests). `open` returns a store the suite
 * may fill with keys; it is closed after the suite.
 */
export function keyStoreConformance(
  name: string,
  open: () => Promise<KeyStore>,
  options: ConformanceOptions = {},
): void {
  const numRuns = options.numRuns ?? 1000;

  describe(`KeyStore conformance: ${name}`, () => {
    let store: KeyStore;
    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store.close();
    });

    describe('key-encryption keys', () => {
      it('creates an enabled AES-256 KEK with metadata only, listed and described the same', async () => {
        const before = Date.now();
        const meta = await store.createKek({ label: 'tenant acme' });
        expect(isKeyId(meta.id)).toBe(true);
        expect(meta).toMatchObject({
          kind: 'kek',
          algorithm: 'A256KW',
          state: 'enabled',
          origin: 'generated',
          label: 'tenant acme',
        });
        expect(Date.parse(meta.created)).toBeGreaterThan(before - 1000);
        expect(Date.parse(meta.created)).toBeLessThan(Date.now() + 1000);
        expect(await store.describe(meta.id)).toEqual(meta);
        expect((await store.list()).find((k) => k.id === meta.id)).toEqual(meta);
        expect(JSON.stringify(meta)).not.toMatch(/material|value|secret/i);
      });

      it('gives every key a distinct id', async () => {
        const a = await store.createKek();
        const b = await store.createKek();
        expect(a.id).not.toBe(b.id);
        expect(a.label).toBe('');
      });

      it('wraps a 256-bit data key to 40 bytes and unwraps it to the same bytes', async () => {
        const kek = await store.createKek();
        const dataKey = SecretKeyBytes.copyOf(randomBytes(32));
        const wrapped = await store.wrapKey(kek.id, dataKey);
        expect(wrapped.kekId).toBe(kek.id);
        expect(wrapped.algorithm).toBe('A256KW');
        expect(wrapped.ciphertext.length).toBe(40);
        const unwrapped = await store.unwrapKey(wrapped);
        expect(unwrapped.expose((b) => Buffer.from(b).toString('hex'))).toBe(
          dataKey.expose((b) => Buffer.from(b).toString('hex')),
        );
        expect(() => JSON.stringify({ key: unwrapped })).toThrow(/refusing to serialise key material/);
        unwrapped.dispose();
      });

      it('round-trips arbitrary data keys (property)', async () => {
        const kek = await store.createKek();
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (bytes) => {
            const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(bytes));
            const back = await store.unwrapKey(wrapped);
            expect(back.expose((b) => Buffer.from(b).equals(Buffer.from(bytes)))).toBe(true);
            back.dispose();
          }),
          { numRuns },
        );
      });

      it('refuses any modified wrapped key with KEY_UNWRAP_FAILED (property)', async () => {
        const kek = await store.createKek();
        const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: 40 * 8 - 1 }), async (bit) => {
            const ciphertext = Uint8Array.from(wrapped.ciphertext);
            ciphertext[bit >> 3]! ^= 1 << (bit & 7);
            await expectCode(store.unwrapKey({ ...wrapped, ciphertext }), 'KEY_UNWRAP_FAILED');
          }),
          { numRuns },
        );
      });

      it('refuses a key wrapped under another KEK, and a wrapped key of the wrong length', async () => {
        const a = await store.createKek();
        const b = await store.createKek();
        const wrapped = await store.wrapKey(a.id, SecretKeyBytes.copyOf(randomBytes(32)));
        await expectCode(store.unwrapKey({ ...wrapped, kekId: b.id }), 'KEY_UNWRAP_FAILED');
        await expectCode(
          store.unwrapKey({ ...wrapped, ciphertext: wrapped.ciphertext.subarray(0, 32) }),
          'KEY_UNWRAP_FAILED',
        );
      });

      it('wraps only 256-bit data keys', async () => {
        const kek = await store.createKek();
        for (const length of [0, 16, 31, 33, 64]) {
          await expectCode(
            store.wrapKey(kek.id, SecretKeyBytes.copyOf(new Uint8Array(length))),
            'KEY_USAGE_INVALID',
          );
        }
      });

      it('answers KEY_NOT_FOUND for an unknown id', async () => {
        const missing = 'kek-000000000000000000000000' as KeyId;
        await expectCode(store.describe(missing), 'KEY_NOT_FOUND');
        await expectCode(store.wrapKey(missing, SecretKeyBytes.copyOf(randomBytes(32))), 'KEY_NOT_FOUND');
        await expectCode(store.unwrapKey(fakeWrapped(missing)), 'KEY_NOT_FOUND');
        await expectCode(store.disable(missing), 'KEY_NOT_FOUND');
        await expectCode(store.sign(missing, new Uint8Array(1)), 'KEY_NOT_FOUND');
      });

      it('refuses a disabled KEK with KEY_DISABLED until it is enabled again', async () => {
        const kek = await store.createKek();
        const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
        expect((await store.disable(kek.id)).state).toBe('disabled');
        expect((await store.describe(kek.id)).state).toBe('disabled');
        await expectCode(store.unwrapKey(wrapped), 'KEY_DISABLED');
        await expectCode(store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32))), 'KEY_DISABLED');
        expect((await store.enable(kek.id)).state).toBe('enabled');
        (await store.unwrapKey(wrapped)).dispose();
      });

      it('destroys a KEK for good: KEY_DESTROYED from then on, a tombstone in the list', async () => {
        const kek = await store.createKek();
        const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
        const destroyed = await store.destroy(kek.id);
        expect(destroyed).toMatchObject({ id: kek.id, state: 'destroyed', kind: 'kek' });
        await expectCode(store.unwrapKey(wrapped), 'KEY_DESTROYED');
        await expectCode(store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32))), 'KEY_DESTROYED');
        await expectCode(store.enable(kek.id), 'KEY_DESTROYED');
        await expectCode(store.disable(kek.id), 'KEY_DESTROYED');
        expect((await store.describe(kek.id)).state).toBe('destroyed');
        expect((await store.list()).find((k) => k.id === kek.id)?.state).toBe('destroyed');
        expect((await store.destroy(kek.id)).state).toBe('destroyed');
      });
    });

    describe.each(['ES256', 'ES384'] as const)('signing keys (%s)', (algorithm: SigningAlgorithm) => {
      let key: KeyMetadata;
      beforeAll(async () => {
        key = await store.createSigningKey(algorithm, { label: 'audit checkpoints' });
      });

      it('creates an enabled signing key whose public key is a JWK of the right curve', async () => {
        expect(key).toMatchObject({ kind: 'signing', algorithm, state: 'enabled', origin: 'generated' });
        const jwk = await store.publicKey(key.id);
        expect(jwk).toMatchObject({ kty: 'EC', crv: curveFor(algorithm).crv, kid: key.id, alg: algorithm });
      });

      it('signs with raw r||s signatures that verify independently (property)', async () => {
        const jwk = await store.publicKey(key.id);
        const publicKey = createPublicKey({ key: { ...jwk }, format: 'jwk' });
        const curve = curveFor(algorithm);
        const runs = Math.max(1, Math.floor(numRuns / 4));
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (message) => {
            const signature = await store.sign(key.id, message);
            expect(signature.length).toBe(2 * curve.size);
            const ok = verify(curve.hash, message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
            expect(ok).toBe(true);
            const other = Uint8Array.from([...message, 0]);
            expect(verify(curve.hash, other, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)).toBe(
              false,
            );
          }),
          { numRuns: runs },
        );
      });

      it('keeps key kinds apart: a signing key cannot wrap, a KEK cannot sign or show a public key', async () => {
        const kek = await store.createKek();
        await expectCode(store.wrapKey(key.id, SecretKeyBytes.copyOf(randomBytes(32))), 'KEY_USAGE_INVALID');
        await expectCode(store.unwrapKey(fakeWrapped(key.id)), 'KEY_USAGE_INVALID');
        await expectCode(store.sign(kek.id, new Uint8Array(8)), 'KEY_USAGE_INVALID');
        await expectCode(store.publicKey(kek.id), 'KEY_USAGE_INVALID');
      });

      it('refuses to sign with a disabled or destroyed key', async () => {
        const k = await store.createSigningKey(algorithm);
        await store.disable(k.id);
        await expectCode(store.sign(k.id, new Uint8Array(8)), 'KEY_DISABLED');
        await store.enable(k.id);
        await store.sign(k.id, new Uint8Array(8));
        await store.destroy(k.id);
        await expectCode(store.sign(k.id, new Uint8Array(8)), 'KEY_DESTROYED');
        await expectCode(store.publicKey(k.id), 'KEY_DESTROYED');
      });
    });

    describe('BYOK import (RSA-OAEP-SHA256 + AES-KWP)', () => {
      it('publishes a stable RSA import key of at least 3072 bits', async () => {
        const params = await store.importParameters();
        expect(['RSA_AES_KEY_WRAP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1']).toContain(params.wrappingAlgorithm);
        expect(params.modulusBits).toBeGreaterThanOrEqual(3072);
        expect(params.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
        expect(params.publicKeyJwk).toMatchObject({
          kty: 'RSA',
          alg: 'RSA-OAEP-256',
          kid: params.importKeyId,
        });
        expect((await store.importParameters()).importKeyId).toBe(params.importKeyId);
      });

      it('imports a wrapped KEK that then wraps exactly like the customer key', async () => {
        const customerKek = SecretKeyBytes.copyOf(randomBytes(32));
        const payload = wrapKeyForImport(await store.importParameters(), customerKek);
        const meta = await store.importKek(payload, { label: 'byok' });
        expect(meta).toMatchObject({
          kind: 'kek',
          algorithm: 'A256KW',
          origin: 'imported',
          state: 'enabled',
        });
        const dataKey = randomBytes(32);
        const wrapped = await store.wrapKey(meta.id, SecretKeyBytes.copyOf(dataKey));
        // The customer can unwrap it with its own copy: the keystore holds the same key.
        const unwrapped = customerKek.expose((k) => aesKeyUnwrap(k, wrapped.ciphertext));
        expect(Buffer.from(unwrapped).equals(dataKey)).toBe(true);
      });

      it('refuses wrongly wrapped key material with KEY_IMPORT_INVALID', async () => {
        const params = await store.importParameters();
        const good = wrapKeyForImport(params, SecretKeyBytes.copyOf(randomBytes(32)));
        await expectCode(store.importKek(good.subarray(0, good.length - 8)), 'KEY_IMPORT_INVALID');
        await expectCode(store.importKek(new Uint8Array(0)), 'KEY_IMPORT_INVALID');
        const kwpTampered = Uint8Array.from(good);
        kwpTampered[kwpTampered.length - 1]! ^= 0x01;
        await expectCode(store.importKek(kwpTampered), 'KEY_IMPORT_INVALID');
        const rsaTampered = Uint8Array.from(good);
        rsaTampered[5]! ^= 0x80;
        await expectCode(store.importKek(rsaTampered), 'KEY_IMPORT_INVALID');
        // A 128-bit key is refused: KEKs are AES-256.
        const short = wrapKeyForImport(params, SecretKeyBytes.copyOf(randomBytes(16)));
        await expectCode(store.importKek(short), 'KEY_IMPORT_INVALID');
      });
    });
  });
}

function fakeWrapped(kekId: KeyId): WrappedKey {
  return { kekId, algorithm: 'A256KW', ciphertext: new Uint8Array(40) };
}

/** Asserts that `promise` rejects with a TresorError of `code` (and nothing else). */
export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const outcome = await promise.then(
    () => ({ ok: true as const }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  if (outcome.ok) throw new Error(`expected ${code}, but the call succeeded`);
  if (!isTresorError(outcome.err))
    throw new Error(`expected ${code}, got a non-Tresor error: ${String(outcome.err)}`);
  expect(outcome.err.code).toBe(code);
}
