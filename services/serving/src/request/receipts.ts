import { createHash } from 'node:crypto';
import { CompactSign } from 'jose';
import type { ReceiptClaims } from '@tresor/protocol';

/** `typ` of receipt JWS headers. */
export const RECEIPT_TYPE = 'tresor-receipt+jwt';

export const sha256Hex = (bytes: Uint8Array | string): string =>
  createHash('sha256').update(bytes).digest('hex');

/**
 * Signs response receipts (attestation-bundle.ts ReceiptClaims) with the replica's Ed25519 key,
 * whose public half every evidence binds (runtimeData.receiptKey): a client holding a receipt
 * can prove which attested replica and model produced exactly which bytes for which request.
 */
export class ReceiptSigner {
  readonly #key: CryptoKey;
  readonly #now: () => Date;

  constructor(key: CryptoKey, now: () => Date = () => new Date()) {
    this.#key = key;
    this.#now = now;
  }

  async sign(claims: Omit<ReceiptClaims, 'iat'>): Promise<string> {
    const payload: ReceiptClaims = { ...claims, iat: Math.floor(this.#now().getTime() / 1000) };
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'EdDSA', typ: RECEIPT_TYPE })
      .sign(this.#key);
  }
}
