import { TresorError } from '@tresor/protocol';
import { GCM_TAG_LENGTH, NONCE_PREFIX_LENGTH } from './sealed-model-format.js';

/**
 * The STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár: "Online Authenticated-Encryption
 * and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015, §7), instantiated with AES-256-GCM as in
 * Tink's streaming AEAD and age: chunk i is sealed under the nonce
 *
 *   noncePrefix (7 bytes) || i (uint32, big-endian) || 0x01 if the chunk is the last, else 0x00
 *
 * with the header hash as associated data. Moving a chunk changes its counter, cutting the file
 * drops the chunk with the last-flag set, and a header from another file changes the AAD, so each
 * of these fails GCM authentication.
 */
export function chunkNonce(noncePrefix: Uint8Array, index: number, last: boolean): Uint8Array<ArrayBuffer> {
  const nonce = new Uint8Array(NONCE_PREFIX_LENGTH + 5);
  nonce.set(noncePrefix.subarray(0, NONCE_PREFIX_LENGTH), 0);
  new DataView(nonce.buffer).setUint32(NONCE_PREFIX_LENGTH, index);
  nonce[NONCE_PREFIX_LENGTH + 4] = last ? 1 : 0;
  return nonce;
}

/** WebCrypto accepts only ArrayBuffer-backed views; pass those through and copy anything else. */
function arrayBufferView(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

/** Seals one chunk; the result is ciphertext || 16-byte tag. Runs in WebCrypto's worker threads. */
export async function encryptChunk(
  key: CryptoKey,
  nonce: Uint8Array<ArrayBuffer>,
  aad: Uint8Array<ArrayBuffer>,
  plaintext: Uint8Array,
): Promise<Uint8Array<ArrayBuffer>> {
  const sealed = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: GCM_TAG_LENGTH * 8 },
    key,
    arrayBufferView(plaintext),
  );
  return new Uint8Array(sealed);
}

/**
 * Opens one chunk. WebCrypto releases no plaintext unless the tag verifies, so a failed chunk
 * yields nothing; every failure becomes SEALED_MODEL_TAMPERED.
 */
export async function decryptChunk(
  key: CryptoKey,
  nonce: Uint8Array<ArrayBuffer>,
  aad: Uint8Array<ArrayBuffer>,
  sealed: Uint8Array,
  index: number,
): Promise<Uint8Array<ArrayBuffer>> {
  try {
    const plaintext = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: GCM_TAG_LENGTH * 8 },
      key,
      arrayBufferView(sealed),
    );
    return new Uint8Array(plaintext);
  } catch (cause) {
    throw chunkTampered(index, cause);
  }
}

/** SEALED_MODEL_TAMPERED for a chunk whose tag did not verify. */
export function chunkTampered(index: number, cause: unknown): TresorError {
  return new TresorError(
    'SEALED_MODEL_TAMPERED',
    `chunk ${String(index)} failed authentication: it was modified, moved, or belongs to another file`,
    { cause, details: { chunk: index } },
  );
}

/**
 * Chunk operations in flight, oldest first. Keeping several AES-GCM jobs queued lets WebCrypto's
 * thread pool work on chunk i+1 while the main thread hashes chunk i and the file I/O proceeds, so
 * the two cores of a small machine overlap.
 */
export class ChunkPipeline {
  readonly #queue: Promise<Uint8Array<ArrayBuffer>>[] = [];

  constructor(readonly depth: number) {}

  /** Queues an operation; its rejection surfaces when it is taken, never as an unhandled rejection. */
  push(operation: Promise<Uint8Array<ArrayBuffer>>): void {
    operation.catch(() => undefined);
    this.#queue.push(operation);
  }

  get full(): boolean {
    return this.#queue.length >= this.depth;
  }

  get size(): number {
    return this.#queue.length;
  }

  /** The oldest operation's result (or its error). */
  async take(): Promise<Uint8Array<ArrayBuffer>> {
    const oldest = this.#queue.shift();
    if (oldest === undefined) throw new TresorError('INTERNAL_ERROR', 'no sealed model chunk is in flight');
    return oldest;
  }
}

/** Plaintext bytes in flight at most (each is also copied and encrypted once while in flight). */
const IN_FLIGHT_BYTES = 16 * 1024 * 1024;

/**
 * Chunk operations in flight for a chunk size: 4 for the 4 MiB default (one per libuv pool
 * thread), up to 8 for small chunks where per-call latency dominates, down to 1 for the largest.
 */
export function pipelineDepth(chunkSize: number): number {
  return Math.max(1, Math.min(8, Math.floor(IN_FLIGHT_BYTES / chunkSize)));
}
