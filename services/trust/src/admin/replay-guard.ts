import { TresorError } from '@tresor/protocol';

/**
 * Remembers the ids (`jti`) of accepted admin requests until they could no longer be accepted
 * anyway (their `iat` left the window), so each signed request takes effect once. Bounded: when
 * full of live entries it refuses new requests (RATE_LIMITED) instead of forgetting one early,
 * which would reopen a replay.
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  readonly #capacity: number;

  constructor(capacity = 100_000) {
    this.#capacity = capacity;
  }

  /**
   * Records `id` as used until `expiresAtMs`.
   *
   * @throws TresorError ADMIN_REQUEST_REPLAYED when it was used before; RATE_LIMITED when full
   */
  use(id: string, expiresAtMs: number, nowMs: number): void {
    const until = this.#seen.get(id);
    if (until !== undefined && until > nowMs) {
      throw new TresorError('ADMIN_REQUEST_REPLAYED', 'this signed admin request was already accepted once');
    }
    if (this.#seen.size >= this.#capacity) this.#forgetExpired(nowMs);
    if (this.#seen.size >= this.#capacity) {
      throw new TresorError(
        'RATE_LIMITED',
        'too many admin requests within the replay window; retry in a few minutes',
      );
    }
    this.#seen.set(id, expiresAtMs);
  }

  get size(): number {
    return this.#seen.size;
  }

  #forgetExpired(nowMs: number): void {
    for (const [id, until] of this.#seen) if (until <= nowMs) this.#seen.delete(id);
  }
}
