import { sha256 } from '@noble/hashes/sha2.js';

/**
 * Incremental SHA-256 of the model plaintext. WebCrypto's digest() is one-shot, so the browser
 * default is @noble/hashes; the Node entry point injects node:crypto's native hash, which is
 * an order of magnitude faster (SHA-NI) and bounds unseal throughput.
 */
export interface Sha256Hasher {
  update(bytes: Uint8Array): void;
  digest(): Uint8Array;
}

export type Sha256Factory = () => Sha256Hasher;

export const nobleSha256: Sha256Factory = () => {
  const hash = sha256.create();
  return {
    update(bytes) {
      hash.update(bytes);
    },
    digest: () => hash.digest(),
  };
};
