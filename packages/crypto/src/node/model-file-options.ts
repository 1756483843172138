import type { ModelKey } from '../sealed-model-key.js';

export type ModelFilePhase = 'hashing' | 'sealing' | 'unsealing';

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
  /** Called after each chunk; cheap enough to render a progress bar from. */
  readonly onProgress?: (progress: ModelFileProgress) => void;
}
