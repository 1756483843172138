import { createHash, KeyObject, sign } from 'node:crypto';
import type { ReceiptClaims } from '@tresor/protocol';

/** `typ` of receipt JWS headers. */
export const RECEIPT_TYPE = 'tresor-receipt+jwt';

export const sha256Hex = (bytes: Uint8Array | string): string =>
  createHash('sha256').update(bytes).digest('hex');

/** The protected header of every receipt, as jose's CompactSign encodes it (JSON, then base64url). */
const PROTECTED_HEADER = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: RECEIPT_TYPE })).toString(
  'base64url',
);

/**
 * Signs response receipts (attestation-bundle.ts ReceiptClaims) with the replica's Ed25519 key,
 * whose public half every evidence binds (runtimeData.receiptKey): a client holding a receipt
 * can prove which attested replica and model produced exactly which bytes for which request.
 */
export class ReceiptSigner {
  readonly #key: KeyObject;
  readonly #now: () => Date;

  constructor(key: CryptoKey, now: () => Date = () => new Date()) {
    if (key.algorithm.name !== 'Ed25519' || key.type !== 'private') {
      throw new TypeError('receipts are signed with an Ed25519 private key');
    }
    // Signed synchronously with node:crypto (Ed25519 is deterministic: the same JWS as jose's
    // CompactSign over WebCrypto gives, without a thread-pool job and promise per receipt).
    this.#key = KeyObject.from(key);
    this.#now = now;
  }

  sign(claims: Omit<ReceiptClaims, 'iat'>): Promise<string> {
    const payload: ReceiptClaims = { ...claims, iat: Math.floor(this.#now().getTime() / 1000) };
    const input = `${PROTECTED_HEADER}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const signature = sign(null, Buffer.from(input), this.#key).toString('base64url');
    return Promise.resolve(`${input}.${signature}`);
  }
}
