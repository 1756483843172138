import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '@tresor/protocol';

export const DECISIONS_FILE = 'decisions.log';

/** One line of the key server's decision log. Identifiers and verdicts only, never key material. */
export interface KeyDecision {
  readonly time: string;
  readonly decision: 'allow' | 'deny';
  readonly operation: string;
  readonly tenant: string | null;
  readonly keyId: string | null;
  /** SHA-256 fingerprint of the client certificate (mTLS identity). */
  readonly client: string;
  readonly code?: ErrorCode;
  readonly reason?: string;
  /** From the verified attestation token, when there was one. */
  readonly tokenIssuer?: string;
  readonly tokenIssuedAt?: string;
  readonly tees?: readonly string[];
  readonly measurements?: Readonly<Record<string, string>>;
}

/**
 * Appends every decision to `<state dir>/decisions.log` as JSON lines (0600). The append is
 * synchronous so the line is in the file before the answer leaves the server: what was released is
 * always on record.
 */
export class DecisionLog {
  readonly #path: string;

  constructor(stateDir: string) {
    this.#path = join(stateDir, DECISIONS_FILE);
  }

  get path(): string {
    return this.#path;
  }

  record(decision: KeyDecision): void {
    appendFileSync(this.#path, `${JSON.stringify(decision)}\n`, { mode: 0o600 });
  }
}
