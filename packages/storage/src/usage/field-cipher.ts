import { isTresorError } from '@tresor/protocol';

/**
 * Encrypts sensitive columns under a tenant's data key (AES-256-GCM; `recordId` is in the AAD,
 * so a value copied into another row or column does not decrypt). `@tresor/keystore`'s
 * EnvelopeCipher has exactly this shape.
 */
export interface FieldCipher {
  encryptField(recordId: string, plaintext: Uint8Array): Promise<Uint8Array>;
  decryptField(recordId: string, ciphertext: Uint8Array): Promise<Uint8Array>;
}

/** The cipher holding a tenant's data key (wrapped by the tenant's KEK in the keystore). */
export type TenantFieldCiphers = (tenant: string) => Promise<FieldCipher>;

/**
 * A decrypted column: its value, or why it is withheld. Crypto-shredding makes a column
 * permanently `readable: false` while the rest of its row stays readable.
 */
export type SealedField<T> =
  | { readonly readable: true; readonly value: T }
  | { readonly readable: false; readonly code: string; readonly reason: string };

/**
 * Codes meaning "this tenant's key says no": destroyed (crypto-shredded), revoked by its owner
 * (KYOK), disabled, gone, or the ciphertext does not open under it. The value is withheld and the
 * row still returned. Anything else (keystore unreachable) is thrown, so the caller retries
 * instead of showing a transient failure as lost data.
 */
const WITHHOLDING_CODES = new Set([
  'KEY_DESTROYED',
  'KEY_REVOKED',
  'KEY_DISABLED',
  'KEY_NOT_FOUND',
  'KEY_UNWRAP_FAILED',
  'ENCRYPTED_FIELD_INVALID',
]);

/** The record id bound into a column's AAD: table, row id and column. */
export function fieldRecordId(table: string, id: string, column: string): string {
  return `${table}/${id}/${column}`;
}

export async function openSealedText(
  cipher: () => Promise<FieldCipher>,
  recordId: string,
  sealed: Uint8Array,
): Promise<SealedField<string>> {
  try {
    const plaintext = await (await cipher()).decryptField(recordId, sealed);
    return { readable: true, value: new TextDecoder('utf-8', { fatal: true }).decode(plaintext) };
  } catch (err) {
    if (isTresorError(err) && WITHHOLDING_CODES.has(err.code)) {
      return { readable: false, code: err.code, reason: err.message };
    }
    if (err instanceof TypeError) {
      return {
        readable: false,
        code: 'ENCRYPTED_FIELD_INVALID',
        reason: 'the decrypted value is not UTF-8 text',
      };
    }
    throw err;
  }
}
