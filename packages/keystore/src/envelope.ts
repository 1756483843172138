import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { utf8Encode } from '@tresor/crypto';
import type { KeyId } from './key-id.js';
import type { KeyStore } from './key-store.js';
import { SecretKeyBytes } from './secret-key-bytes.js';
import type { WrappedKey } from './wrapped-key.js';

/**
 * What storage needs to keep a tenant's sensitive columns, stored secrets and model keys encrypted
 * at rest. `recordId` names the row (or secret) the value belongs to and is authenticated with it, so
 * a value copied into another record does not decrypt.
 */
export interface FieldCipher {
  encryptField(recordId: string, plaintext: Uint8Array): Promise<Uint8Array>;
  decryptField(recordId: string, ciphertext: Uint8Array): Promise<Uint8Array>;
}

const FORMAT_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;
const MAX_RECORD_ID_LENGTH = 1024;
const AAD_LABEL = utf8Encode('tresor field v1');

/**
 * Envelope encryption at rest: each tenant has one AES-256 data key, stored only wrapped by the
 * tenant's KEK (which lives in the HSM or the customer's key server). Fields are AES-256-GCM:
 *
 *   0x01 || nonce (12 bytes, random) || ciphertext || tag (16 bytes)
 *   AAD = "tresor field v1" || 0x00 || UTF-8(record id)
 *
 * The data key is unwrapped through the keystore for every call and zeroed right after, so disabling,
 * revoking (KYOK: within the client's ≤ 1 s cache) or destroying the KEK stops decryption at once;
 * destroying it makes every field unreadable (crypto-shredding).
 *
 * Random 96-bit nonces keep the GCM collision bound below 2^-32 for up to 2^32 fields per data key
 * (NIST SP 800-38D §8.3); rotate the tenant's data key long before that.
 */
export class EnvelopeCipher implements FieldCipher {
  readonly #store: KeyStore;
  readonly #wrapped: WrappedKey;

  constructor(store: KeyStore, wrappedDataKey: WrappedKey) {
    this.#store = store;
    this.#wrapped = wrappedDataKey;
  }

  /** A fresh tenant data key, returned only wrapped under `kekId`; store it next to the tenant. */
  static async newDataKey(store: KeyStore, kekId: KeyId): Promise<WrappedKey> {
    const dataKey = SecretKeyBytes.takeFrom(randomBytes(32));
    try {
      return await store.wrapKey(kekId, dataKey);
    } finally {
      dataKey.dispose();
    }
  }

  get wrappedDataKey(): WrappedKey {
    return this.#wrapped;
  }

  async encryptField(recordId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    const aad = recordAad(recordId);
    const dataKey = await this.#store.unwrapKey(this.#wrapped);
    try {
      const nonce = randomBytes(NONCE_BYTES);
      return dataKey.expose((key) => {
        const cipher = createCipheriv('aes-256-gcm', key, nonce);
        cipher.setAAD(aad);
        const body = cipher.update(plaintext);
        const tail = cipher.final();
        const out = new Uint8Array(OVERHEAD + body.length + tail.length);
        out[0] = FORMAT_VERSION;
        out.set(nonce, 1);
        out.set(body, 1 + NONCE_BYTES);
        out.set(tail, 1 + NONCE_BYTES + body.length);
        out.set(cipher.getAuthTag(), out.length - TAG_BYTES);
        return out;
      });
    } finally {
      dataKey.dispose();
    }
  }

  async decryptField(recordId: string, ciphertext: Uint8Array): Promise<Uint8Array> {
    const aad = recordAad(recordId);
    if (ciphertext.length < OVERHEAD || ciphertext[0] !== FORMAT_VERSION) {
      throw new TresorError('ENCRYPTED_FIELD_INVALID', 'not an encrypted field of format version 1');
    }
    const dataKey = await this.#store.unwrapKey(this.#wrapped);
    try {
      return dataKey.expose((key) => {
        try {
          const decipher = createDecipheriv('aes-256-gcm', key, ciphertext.subarray(1, 1 + NONCE_BYTES));
          decipher.setAAD(aad);
          decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
          const head = decipher.update(ciphertext.subarray(1 + NONCE_BYTES, ciphertext.length - TAG_BYTES));
          const tail = decipher.final();
          return Uint8Array.from(Buffer.concat([head, tail]));
        } catch (cause) {
          throw new TresorError(
            'ENCRYPTED_FIELD_INVALID',
            `the encrypted field of record "${recordId}" failed authentication`,
            { cause },
          );
        }
      });
    } finally {
      dataKey.dispose();
    }
  }
}

function recordAad(recordId: string): Uint8Array {
  if (recordId.length === 0 || recordId.length > MAX_RECORD_ID_LENGTH) {
    throw new TresorError('USAGE_INVALID', `a record id is 1 to ${MAX_RECORD_ID_LENGTH} characters`);
  }
  const id = utf8Encode(recordId);
  const aad = new Uint8Array(AAD_LABEL.length + 1 + id.length);
  aad.set(AAD_LABEL, 0);
  aad.set(id, AAD_LABEL.length + 1);
  return aad;
}
