import type { ModelKey } from '../sealed-model-key.js';

export type ModelFilePhase = 'sealing' | 'unsealing';

export interface ModelFileProgress {
  readonly phase: ModelFilePhase;
  /** Plaintext bytes done in this phase. */
  readonly bytes: number;
  /** Plaintext bytes this phase will process. */
  readonly total: number;
}

/** What sealing and unsealing a file have in common. */
export interface ModelFileOptions {
  readonly input: string;
  readonly output: string;
  readonly key: ModelKey;
  /** Replace an existing output file (otherwise refused with USAGE_INVALID). */
  readonly force?: boolean;
  /** fsync the output before it is renamed into place (default true). */
  readonly durable?: boolean;
  /** Stops the work; the temporary output is removed and the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * Hash the plaintext on a worker thread, in parallel with AES-GCM (when unsealing, AES-GCM then
   * gets a worker thread too: gcm-worker.ts). Default: yes for inputs of 128 MiB or more when the
   * process may use two cores or more.
   */
  readonly parallelHash?: boolean;
  /** Called after each block of chunks (about 4 MiB); cheap enough to render a progress bar from. */
  readonly onProgress?: (progress: ModelFileProgress) => void;
}
