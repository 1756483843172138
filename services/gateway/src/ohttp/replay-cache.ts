import { createHash } from 'node:crypto';
import { TresorError } from '@tresor/protocol';

/**
 * Replay protection for OHTTP requests (RFC 9458 §6.5). Every request carries a fresh HPKE
 * encapsulated key `enc`; a request whose `enc` was seen within the window is a replay. Only
 * requests that authenticated are remembered (so nobody can fill the cache with garbage), as a
 * SHA-256 of `enc`. Bounded: when full of live entries, new requests are refused (SERVING_BUSY)
 * rather than an entry forgotten early, which would reopen a replay.
 *
 * A cache alone cannot refuse a replay older than the window; clients that send a `date` header
 * inside the encrypted request are protected beyond it too, since the gateway refuses a `date`
 * outside the window (see {@link checkRequestDate}).
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #windowMs: number;
  readonly #capacity: number;

  constructor(windowMs: number, capacity: number) {
    this.#windowMs = windowMs;
    this.#capacity = capacity;
  }

  /** Records `enc`. @throws TresorError OHTTP_REQUEST_REPLAYED when seen within the window */
  use(enc: Uint8Array, nowMs: number): void {
    const id = createHash('sha256').update(enc).digest('base64');
    const until = this.#seen.get(id);
    if (until !== undefined && until > nowMs) {
      throw new TresorError('OHTTP_REQUEST_REPLAYED', 'this encapsulated request was already received once');
    }
    // Entries go in in expiry order (one window after arrival), so the expired ones lead the Map:
    // drop them as time passes, or the cache holds every request until it is full (1,000,000 by
    // default: over 100 MB of heap that the soak showed as steady growth).
    for (const [seen, expires] of this.#seen) {
      if (expires > nowMs) break;
      this.#seen.delete(seen);
    }
    if (this.#seen.size >= this.#capacity) this.#forgetExpired(nowMs);
    if (this.#seen.size >= this.#capacity) {
      throw new TresorError('SERVING_BUSY', 'too many requests within the replay window; retry shortly');
    }
    this.#seen.set(id, nowMs + this.#windowMs);
  }

  get size(): number {
    return this.#seen.size;
  }

  #forgetExpired(nowMs: number): void {
    for (const [id, until] of this.#seen) if (until <= nowMs) this.#seen.delete(id);
  }
}

/**
 * Refuses an inner request whose `date` header (RFC 9110 §6.6.1) lies outside ±window of now: a
 * replay of a request older than the replay cache remembers. Requests without `date` pass.
 * @throws TresorError OHTTP_REQUEST_REPLAYED
 */
export function checkRequestDate(value: string | undefined, nowMs: number, windowMs: number): void {
  if (value === undefined) return;
  const sent = Date.parse(value);
  if (Number.isNaN(sent) || Math.abs(nowMs - sent) > windowMs) {
    throw new TresorError(
      'OHTTP_REQUEST_REPLAYED',
      'the request date is outside the replay window; send a freshly encapsulated request with the current date',
    );
  }
}

/** Nenc per KEM (RFC 9180 §7.1, X-Wing draft): where `enc` ends in a request after its 7-byte header. */
const ENC_LENGTH: Readonly<Record<number, number>> = { 0x0020: 32, 0x647a: 1120 };
export const OHTTP_HEADER_LENGTH = 7;

/** The `enc` of an encapsulated request (plain or chunked): the bytes after the header. */
export function encapsulatedKeyOf(body: Uint8Array): Uint8Array {
  const kem = body.length >= 3 ? ((body[1] ?? 0) << 8) | (body[2] ?? 0) : 0;
  const length = ENC_LENGTH[kem] ?? 32;
  return body.subarray(OHTTP_HEADER_LENGTH, OHTTP_HEADER_LENGTH + length);
}
