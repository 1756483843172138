import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { Pkcs11KeyStore, SecretKeyBytes, parseKeyId } from '@tresor/keystore';
import {
  SOFTHSM_MODULE,
  createSoftHsmToken,
  whileSoftHsmTokenAway,
  type SoftHsmToken,
} from './keystore-support.js';

/**
 * Fault injection: the HSM (SoftHSM2 over PKCS#11) becomes unavailable while a store is open
 * (issue #13). SoftHSM keeps its token as files under its token directory; the fault moves that
 * directory away while the store's session is open (as an unmounted or lost HSM volume would), then
 * puts it back.
 *
 * Expectations: while the token is away, every operation fails with KEYSTORE_UNAVAILABLE (retryable),
 * never KEY_NOT_FOUND (which reads as "deleted"), with no key material returned or in the message;
 * once it is back, the SAME open store works again without being reopened (it opens a new session,
 * re-initialising SoftHSM, which otherwise keeps answering CKR_GENERAL_ERROR), and so do a store
 * opened during the outage and a store opened afterwards in the same process.
 */

let token: SoftHsmToken;
let store: Pkcs11KeyStore;

beforeAll(async () => {
  token = await createSoftHsmToken('tresor-fault');
  store = await openStore();
});
afterAll(async () => {
  await store.close().catch(() => undefined);
  await rm(token.dir, { recursive: true, force: true });
});

/** Error messages seen during the outage, checked for key material. */
const messages: string[] = [];

async function outcome(work: Promise<unknown>): Promise<string> {
  try {
    const value = await work;
    if (value instanceof SecretKeyBytes) {
      value.dispose();
      return 'key';
    }
    if (typeof value === 'object' && value !== null && 'ciphertext' in value) return 'wrapped';
    return 'ok';
  } catch (err) {
    if (isTresorError(err)) {
      messages.push(err.message);
      return err.code;
    }
    return `not a TresorError: ${String(err)}`;
  }
}

/** The stores' clock: a failed reconnect makes a store wait RECONNECT_BACKOFF_MS (1 s) by it. */
let clock = Date.parse('2026-12-07T12:00:00Z');
const now = (): Date => new Date(clock);

const openStore = (): Promise<Pkcs11KeyStore> =>
  Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, tokenLabel: token.label, pin: token.pin(), now });

const whileTokenAway = <T>(during: () => Promise<T>): Promise<T> => whileSoftHsmTokenAway(token, during);

describe('SoftHSM unavailable while a store is open', () => {
  it('refuses every operation with KEYSTORE_UNAVAILABLE while the token is away, then works again without reopening', async () => {
    const kek = await store.createKek({ label: 'fault' });
    const signing = await store.createSigningKey('ES256', { label: 'fault-sig' });
    const dataKey = randomBytes(32);
    const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(dataKey));
    expect(await outcome(store.unwrapKey(wrapped))).toBe('key'); // control
    const missing = parseKeyId(`kek-${randomBytes(12).toString('hex')}`);
    expect(await outcome(store.describe(missing))).toBe('KEY_NOT_FOUND'); // control: truly absent
    messages.length = 0;

    const during = await whileTokenAway(async () => [
      await outcome(store.unwrapKey(wrapped)),
      await outcome(store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)))),
      await outcome(store.unwrapKey(wrapped)),
      await outcome(store.createKek({ label: 'while away' })),
      await outcome(store.sign(signing.id, new Uint8Array([1, 2, 3]))),
      await outcome(store.describe(kek.id)),
      // Absent or not cannot be told while the token is away: not KEY_NOT_FOUND either.
      await outcome(store.describe(missing)),
      await outcome(store.list()),
      await outcome(openStore()),
    ]);
    expect(during).toEqual(Array<string>(during.length).fill('KEYSTORE_UNAVAILABLE'));
    // Every refusal says what to do, and none carries the data key.
    for (const message of messages) {
      expect(message).toMatch(/check that the HSM/);
      expect(message).not.toContain(dataKey.toString('hex'));
      expect(message).not.toContain(dataKey.toString('base64'));
    }

    // The store tried to reconnect during the outage and failed, so it waits 1 s (by its clock)
    // before the next attempt, refusing at once even though the token is back by now.
    const waiting = await outcome(store.unwrapKey(wrapped));
    expect(waiting).toBe('KEYSTORE_UNAVAILABLE');
    expect(messages.at(-1)).toMatch(/next attempt is at 2026-12-07T12:00:01.000Z/);
    clock += 1000;

    // The same open store, with the token back: unwraps the same data key, wraps, signs, and still
    // tells a truly absent key apart.
    const again = await store.unwrapKey(wrapped);
    expect(again.expose((b) => Buffer.from(b).equals(dataKey))).toBe(true);
    again.dispose();
    expect(await outcome(store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32))))).toBe('wrapped');
    expect((await store.sign(signing.id, new Uint8Array([1, 2, 3]))).length).toBe(64);
    expect(await outcome(store.describe(missing))).toBe('KEY_NOT_FOUND');
    expect((await store.list()).map((k) => k.id)).toEqual(expect.arrayContaining([kek.id, signing.id]));
  });

  it('recovers a store opened before the outage and one opened after it, sharing the module', async () => {
    const kek = await store.createKek({ label: 'shared' });
    const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    const other = await openStore();
    try {
      const during = await whileTokenAway(async () => [
        await outcome(other.unwrapKey(wrapped)),
        await outcome(store.unwrapKey(wrapped)),
      ]);
      expect(during).toEqual(['KEYSTORE_UNAVAILABLE', 'KEYSTORE_UNAVAILABLE']);
      // The first store to notice re-initialises the module; the other must reconnect, not reuse
      // a session handle of the old module generation.
      expect(await outcome(other.unwrapKey(wrapped))).toBe('key');
      expect(await outcome(store.unwrapKey(wrapped))).toBe('key');
      const third = await openStore();
      expect(await outcome(third.unwrapKey(wrapped))).toBe('key');
      await third.close();
      expect(await outcome(other.unwrapKey(wrapped))).toBe('key');
    } finally {
      await other.close();
    }
    expect(await outcome(store.unwrapKey(wrapped))).toBe('key');
  });

  it('opens a new store once the token is back even when no open store noticed the outage', async () => {
    const kek = await store.createKek({ label: 'unnoticed' });
    const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    // Away and back with no operation in between: SoftHSM's view of the token is stale all the same.
    await whileTokenAway(() => Promise.resolve());
    const fresh = await openStore();
    try {
      expect(await outcome(fresh.unwrapKey(wrapped))).toBe('key');
    } finally {
      await fresh.close();
    }
    expect(await outcome(store.unwrapKey(wrapped))).toBe('key');
  });

  it('still refuses a wrong PIN after an outage, without retrying it', async () => {
    await whileTokenAway(() => Promise.resolve());
    await expect(
      Pkcs11KeyStore.open({
        module: SOFTHSM_MODULE,
        tokenLabel: token.label,
        pin: SecretKeyBytes.copyOf(Buffer.from('9999')),
      }),
    ).rejects.toMatchObject({ code: 'KEYSTORE_AUTH_FAILED' });
    const kek = await store.createKek({ label: 'after wrong pin' });
    expect(await outcome(store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32))))).toBe('wrapped');
  });
});
