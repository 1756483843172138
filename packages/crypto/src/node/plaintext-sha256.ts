import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { TresorError } from '@tresor/protocol';
import { OrderedWorker } from './ordered-worker.js';

/**
 * Where the SHA-256 of a model's plaintext runs. SHA-256 is the slowest step of sealing and
 * unsealing (OpenSSL's SHA-NI code runs at under half its AES-256-GCM speed) and cannot be split
 * across cores, so with two cores or more it gets a worker thread of its own while AES-GCM and the
 * file I/O use the calling thread. On one core, or for an input too small to repay starting a
 * thread, it runs inline: fed each piece right after AES-GCM touched it, while it is in cache.
 */
export type PlaintextSha256 =
  | { readonly thread: 'inline'; readonly hash: Hash }
  | { readonly thread: 'worker'; readonly worker: Sha256Worker };

/**
 * Below this a worker costs more than it saves: the first worker of a process takes 30 ms or more
 * to start (over 100 ms on a loaded machine), and moving SHA-256 off this thread saves about
 * 0.3 s per GB on two cores.
 */
export const WORKER_MIN_BYTES = 128 * 1024 * 1024;

/**
 * The hasher for `plaintextLength` bytes: a worker thread when `parallel` says so, or by default
 * when the input is large enough and the process may use at least two cores.
 */
export function plaintextSha256(plaintextLength: number, parallel: boolean | undefined): PlaintextSha256 {
  const useWorker = parallel ?? (plaintextLength >= WORKER_MIN_BYTES && availableParallelism() > 1);
  return useWorker
    ? { thread: 'worker', worker: new Sha256Worker() }
    : { thread: 'inline', hash: createHash('sha256') };
}

export async function digestOf(hasher: PlaintextSha256): Promise<Uint8Array> {
  return hasher.thread === 'inline' ? new Uint8Array(hasher.hash.digest()) : hasher.worker.digest();
}

export async function closeHasher(hasher: PlaintextSha256): Promise<void> {
  if (hasher.thread === 'worker') await hasher.worker.close();
}

/** Zeroed bytes that a hashing worker can read without a copy. */
export function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}

/**
 * The worker's program, evaluated as CommonJS. It is a string rather than a module file so that it
 * runs the same from the TypeScript sources (tests) and from dist/. It answers each block once it
 * is hashed (the caller may then reuse that memory), and `null` with the digest.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
parentPort.on('message', (bytes) => {
  if (bytes === null) {
    parentPort.postMessage(new Uint8Array(hash.digest()));
  } else {
    hash.update(bytes);
    parentPort.postMessage(null);
  }
});
`;

/**
 * SHA-256 on a worker thread. Blocks travel as views of shared memory, so nothing is copied;
 * the worker answers in order, so each request takes the next answer. Starting the thread takes
 * tens of milliseconds, which overlaps the key derivation and the first reads.
 */
export class Sha256Worker {
  readonly #worker = new OrderedWorker(WORKER_SOURCE, 'SHA-256 worker');

  /** Hashes `bytes` (a view of a SharedArrayBuffer); they must not change until this resolves. */
  async update(bytes: Uint8Array): Promise<void> {
    if (!(bytes.buffer instanceof SharedArrayBuffer)) {
      throw new TresorError('INTERNAL_ERROR', 'the SHA-256 worker reads shared memory only');
    }
    await this.#worker.ask(bytes);
  }

  /** The digest of every block so far; call once, after the last update. */
  async digest(): Promise<Uint8Array> {
    const digest = await this.#worker.ask(null);
    if (!(digest instanceof Uint8Array) || digest.length !== 32) {
      throw new TresorError('INTERNAL_ERROR', 'the SHA-256 worker answered without a digest');
    }
    return digest;
  }

  /** Stops the thread; safe to call more than once. */
  close(): Promise<void> {
    return this.#worker.close();
  }
}
