import type { KeyObject } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { chunkTampered } from '../sealed-model-chunks.js';
import { GCM_TAG_LENGTH } from '../sealed-model-format.js';
import { GCM_PIECE_BYTES } from './gcm-chunk.js';
import { OrderedWorker } from './ordered-worker.js';

/** One chunk of a block: where its ciphertext ‖ tag sits in the sealed buffer, where its plaintext goes. */
export interface WorkerChunk {
  readonly index: number;
  readonly nonce: Uint8Array;
  /** Offset of the chunk's ciphertext in the block's sealed bytes; its tag follows it. */
  readonly from: number;
  /** Offset of the chunk's plaintext in the block's plaintext bytes. */
  readonly to: number;
  readonly length: number;
}

/**
 * The worker's program (CommonJS, evaluated: it runs the same from the TypeScript sources and from
 * dist/, like the SHA-256 worker). The same steps as `decryptChunkInto`: each chunk is decrypted
 * piece by piece into shared memory and its tag checked by `final()`. It answers each block once
 * every tag in it verified (`null`), or names the first chunk whose tag failed and then refuses
 * every later block, so no plaintext after a failure is ever released.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createDecipheriv } = require('node:crypto');
const PIECE = ${String(GCM_PIECE_BYTES)};
const TAG = ${String(GCM_TAG_LENGTH)};
let key;
let aad;
let failed = false;
parentPort.on('message', (message) => {
  if (message.key !== undefined) {
    key = message.key;
    aad = message.aad;
    return;
  }
  if (failed || key === undefined) {
    parentPort.postMessage({ refused: true });
    return;
  }
  const { sealed, plaintext, chunks } = message;
  for (const { index, nonce, from, to, length } of chunks) {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(from + length, from + length + TAG));
    for (let offset = 0; offset < length; offset += PIECE) {
      const end = Math.min(length, offset + PIECE);
      plaintext.set(decipher.update(sealed.subarray(from + offset, from + end)), to + offset);
    }
    try {
      decipher.final();
    } catch {
      failed = true;
      parentPort.postMessage({ tampered: index });
      return;
    }
  }
  parentPort.postMessage(null);
});
`;

/**
 * AES-256-GCM decryption of sealed-model chunks on a worker thread, over shared memory.
 *
 * Why a thread of its own rather than the calling thread: node:crypto returns every piece of
 * output in a new buffer, so decrypting 1 GiB leaves 1 GiB of short-lived buffers, and V8
 * collects young buffers every 32 MiB or so. In a small isolate that is cheap; in a service's
 * isolate (tens of MB of live objects: HTTP server, trust client, logger) those collections kept
 * starting full mark-compacts, one every 100–300 ms, which cost more CPU time than the AES-GCM
 * (bench/serving.ts, 1 GiB: about 1.3 s of 3 s). The worker's heap holds only these buffers.
 *
 * Blocks are answered in order; each answer comes only after every tag of the block verified, so
 * the caller may release the plaintext then, and not before.
 */
export class GcmDecryptWorker {
  /** Starts the thread; give it the key with `setKey` once the header authenticated. */
  readonly #worker = new OrderedWorker(WORKER_SOURCE, 'AES-GCM worker', (answer) => {
    if (answer === null) return undefined;
    const tampered = (answer as { tampered?: unknown }).tampered;
    throw typeof tampered === 'number'
      ? chunkTampered(tampered, new Error('the AES-GCM tag did not verify'))
      : new TresorError('INTERNAL_ERROR', 'the AES-GCM worker refused a block');
  });

  /** The chunk key (copied into the worker, which holds it until `close()`) and the chunks' AAD. */
  setKey(key: KeyObject, aad: Uint8Array): void {
    this.#worker.tell({ key, aad });
  }

  /**
   * Decrypts `chunks` of `sealed` into `plaintext` (both views of SharedArrayBuffers); resolves
   * once every one of their tags verified, rejects with SEALED_MODEL_TAMPERED naming the first
   * chunk that did not (and so does every later block). Neither buffer may change until it settles.
   */
  decrypt(sealed: Uint8Array, plaintext: Uint8Array, chunks: readonly WorkerChunk[]): Promise<void> {
    if (!(sealed.buffer instanceof SharedArrayBuffer) || !(plaintext.buffer instanceof SharedArrayBuffer)) {
      return Promise.reject(new TresorError('INTERNAL_ERROR', 'the AES-GCM worker uses shared memory only'));
    }
    return this.#worker.ask({ sealed, plaintext, chunks }).then(() => undefined);
  }

  /** Stops the thread (and with it the worker's copy of the key); safe to call more than once. */
  close(): Promise<void> {
    return this.#worker.close();
  }
}
