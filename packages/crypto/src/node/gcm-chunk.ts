import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { chunkTampered } from '../sealed-model-chunks.js';
import { GCM_TAG_LENGTH } from '../sealed-model-format.js';

/**
 * Bytes per `update()` call. Each call returns its output in a new buffer (Node 20 allocates it
 * twice: once for OpenSSL, once zero-filled for the exact length, then copies), which is copied
 * into the caller's block while it is still in L2, and an inline hasher reads the same piece
 * while it is there. 64 KiB keeps those buffers in cache and is as fast as 256 KiB once freed
 * buffers are reused (freed-heap-retention.ts); without that, it faults in less fresh memory
 * (1 GiB, 2-core VM: 0.4–0.6 s of CPU time against 0.6–0.9 s at 256 KiB).
 */
export const GCM_PIECE_BYTES = 64 * 1024;

/** Sees each plaintext piece once, in order (an inline SHA-256). */
export type PieceObserver = (plaintext: Uint8Array) => void;

/**
 * Seals one chunk with node:crypto's streaming AES-256-GCM: the ciphertext goes to `ciphertext`
 * (same length as `plaintext`) and the 16-byte tag to `tag`.
 */
export function encryptChunkInto(
  key: KeyObject,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  observe?: PieceObserver,
): void {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_LENGTH });
  cipher.setAAD(aad);
  for (let offset = 0; offset < plaintext.length; offset += GCM_PIECE_BYTES) {
    const piece = plaintext.subarray(offset, offset + GCM_PIECE_BYTES);
    ciphertext.set(cipher.update(piece), offset);
    observe?.(piece);
  }
  cipher.final();
  tag.set(cipher.getAuthTag());
}

/**
 * Opens one chunk (`sealed` = ciphertext ‖ tag) into `plaintext`. Streaming decryption writes
 * plaintext before the tag is checked, so `plaintext` must not be released unless this returns:
 * the caller holds the whole chunk and writes it only afterwards. A bad tag is
 * SEALED_MODEL_TAMPERED.
 */
export function decryptChunkInto(
  key: KeyObject,
  nonce: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
  plaintext: Uint8Array,
  index: number,
  observe?: PieceObserver,
): void {
  const length = sealed.length - GCM_TAG_LENGTH;
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(length));
  for (let offset = 0; offset < length; offset += GCM_PIECE_BYTES) {
    const piece = decipher.update(sealed.subarray(offset, Math.min(length, offset + GCM_PIECE_BYTES)));
    plaintext.set(piece, offset);
    observe?.(piece);
  }
  try {
    decipher.final();
  } catch (cause) {
    throw chunkTampered(index, cause);
  }
}
