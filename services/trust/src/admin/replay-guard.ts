import { TresorError } from '@tresor/protocol';
import type { UsedRequestIds } from '@tresor/storage';

/**
 * Remembers the ids (`jti`) of accepted admin requests until they could no longer be accepted
 * anyway (their `iat` left the window), so each signed request takes effect once. Bounded: when
 * full of live entries it refuses new requests (RATE_LIMITED) instead of forgetting one early,
 * which would reopen a replay.
 */
export interface AdminReplayGuard {
  /**
   * Whether what it remembers outlives a restart and is shared by every replica using the same
   * metadata database. When it is not, requests signed before this process started are refused.
   */
  readonly persistent: boolean;
  /**
   * Records `id` as used until `expiresAtMs`.
   *
   * @throws TresorError ADMIN_REQUEST_REPLAYED when it was used before; RATE_LIMITED when full;
   *   STORAGE_* when the database cannot decide (fail closed: the request is refused)
   */
  use(id: string, expiresAtMs: number, nowMs: number): Promise<void>;
}

/** Default bound of live ids. */
export const DEFAULT_REPLAY_CAPACITY = 100_000;

function replayed(): TresorError {
  return new TresorError('ADMIN_REQUEST_REPLAYED', 'this signed admin request was already accepted once');
}

function full(): TresorError {
  return new TresorError(
    'RATE_LIMITED',
    'too many admin requests within the replay window; retry in a few minutes',
  );
}

/** The guard in this process's memory (tests, throw-away local runs): gone at a restart. */
export class ReplayGuard implements AdminReplayGuard {
  readonly persistent = false;
  readonly #seen = new Map<string, number>();
  readonly #capacity: number;

  constructor(capacity = DEFAULT_REPLAY_CAPACITY) {
    this.#capacity = capacity;
  }

  use(id: string, expiresAtMs: number, nowMs: number): Promise<void> {
    const until = this.#seen.get(id);
    if (until !== undefined && until > nowMs) return Promise.reject(replayed());
    if (this.#seen.size >= this.#capacity) this.#forgetExpired(nowMs);
    if (this.#seen.size >= this.#capacity) return Promise.reject(full());
    this.#seen.set(id, expiresAtMs);
    return Promise.resolve();
  }

  get size(): number {
    return this.#seen.size;
  }

  #forgetExpired(nowMs: number): void {
    for (const [id, until] of this.#seen) if (until <= nowMs) this.#seen.delete(id);
  }
}

/** The scope of admin request ids in the `used_request_ids` table. */
export const ADMIN_REPLAY_SCOPE = 'trust-admin';

/**
 * The guard in the metadata database (packages/storage `SqlUsedRequestIds`): a restart, or another
 * replica on the same database (PostgreSQL), refuses a request accepted once within its window.
 */
export class DatabaseReplayGuard implements AdminReplayGuard {
  readonly persistent = true;
  readonly #ids: UsedRequestIds;
  readonly #capacity: number;

  constructor(ids: UsedRequestIds, capacity = DEFAULT_REPLAY_CAPACITY) {
    this.#ids = ids;
    this.#capacity = capacity;
  }

  async use(id: string, expiresAtMs: number, nowMs: number): Promise<void> {
    const outcome = await this.#ids.use(
      ADMIN_REPLAY_SCOPE,
      id,
      Math.ceil(expiresAtMs),
      Math.floor(nowMs),
      this.#capacity,
    );
    if (outcome === 'replayed') throw replayed();
    if (outcome === 'full') throw full();
  }
}
