import { randomBytes } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { bytesToBase64, bytesToHex } from '@tresor/crypto';
import { KBS_NONCE_BYTES, type PrimaryTee } from './protocol.js';

/**
 * RCAR sessions (Request, Challenge, Attestation, Response), as Trustee's session.rs models them:
 * `authed` after /auth (a challenge was issued), `attested` after a successful /attest (a token is
 * held). Differences from Trustee, all stricter:
 *
 * - the challenge is single-use: the first /attest on a session consumes its nonce whatever the
 *   outcome, and any later /attest on it is refused (KBS_NONCE_REPLAYED) — Trustee would hand the
 *   stored token back, guest-components never asks twice;
 * - a failed /attest ends the session (the client starts again with /auth, as guest-components does);
 * - the number of live sessions is bounded, so /auth cannot be used to exhaust memory.
 */

export interface AuthedSession {
  readonly state: 'authed';
  readonly id: string;
  readonly tee: PrimaryTee;
  readonly nonce: string;
  /** When the challenge was issued: evidence answering it cannot be older. */
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export interface AttestingSession {
  readonly state: 'attesting';
  readonly id: string;
  readonly expiresAt: Date;
}

export interface AttestedSession<T> {
  readonly state: 'attested';
  readonly id: string;
  readonly expiresAt: Date;
  readonly token: string;
  readonly attestation: T;
}

export type KbsSession<T> = AuthedSession | AttestingSession | AttestedSession<T>;

export interface SessionStoreOptions {
  readonly ttlSeconds: number;
  readonly maxSessions: number;
  readonly now: () => Date;
  /** Injectable for tests; 32 bytes per nonce and 16 per session id. */
  readonly randomBytes?: (length: number) => Uint8Array;
}

/** A UUIDv4 in "simple" form (32 lower-case hex digits, no dashes), as Trustee's session ids are. */
function uuidV4Simple(random: Uint8Array): string {
  const bytes = Uint8Array.from(random);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40; // RFC 9562 §5.4: version 4
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 9562 §4.1: variant 10
  return bytesToHex(bytes);
}

const SESSION_ID = /^[0-9a-f]{32}$/;

/** In-memory RCAR sessions with expiry; `T` is what an attested session remembers about the workload. */
export class SessionStore<T> {
  readonly #sessions = new Map<string, KbsSession<T>>();
  readonly #options: SessionStoreOptions;
  readonly #random: (length: number) => Uint8Array;

  constructor(options: SessionStoreOptions) {
    this.#options = options;
    this.#random = options.randomBytes ?? ((n) => new Uint8Array(randomBytes(n)));
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Opens a session for `tee` with a fresh challenge nonce. @throws TresorError RATE_LIMITED when full. */
  open(tee: PrimaryTee): AuthedSession {
    if (this.#sessions.size >= this.#options.maxSessions) this.#sweep();
    if (this.#sessions.size >= this.#options.maxSessions) {
      throw new TresorError('RATE_LIMITED', 'too many KBS sessions are open; retry in a few seconds');
    }
    const issuedAt = this.#options.now();
    const session: AuthedSession = {
      state: 'authed',
      id: uuidV4Simple(this.#random(16)),
      tee,
      nonce: bytesToBase64(this.#random(KBS_NONCE_BYTES)),
      issuedAt,
      expiresAt: new Date(issuedAt.getTime() + this.#options.ttlSeconds * 1000),
    };
    this.#sessions.set(session.id, session);
    return session;
  }

  /**
   * The live session `id` names. @throws TresorError KBS_SESSION_UNKNOWN (no or unknown id),
   * KBS_SESSION_EXPIRED (and forgets it).
   */
  get(id: string | undefined): KbsSession<T> {
    if (id === undefined || !SESSION_ID.test(id)) {
      throw new TresorError('KBS_SESSION_UNKNOWN', 'no kbs-session-id cookie; start with POST /kbs/v0/auth');
    }
    const session = this.#sessions.get(id);
    if (session === undefined) {
      throw new TresorError(
        'KBS_SESSION_UNKNOWN',
        'the kbs-session-id names no session; start with POST /kbs/v0/auth',
      );
    }
    if (session.expiresAt.getTime() <= this.#options.now().getTime()) {
      this.#sessions.delete(id);
      throw new TresorError('KBS_SESSION_EXPIRED', 'session expired; start again with POST /kbs/v0/auth');
    }
    return session;
  }

  /**
   * Takes the challenge of an authed session for one attestation attempt: afterwards the nonce is
   * spent. @throws TresorError KBS_NONCE_REPLAYED when the session already answered its challenge.
   */
  beginAttestation(id: string | undefined): AuthedSession {
    const session = this.get(id);
    if (session.state !== 'authed') {
      throw new TresorError(
        'KBS_NONCE_REPLAYED',
        "this session's challenge was already answered; start a new session with POST /kbs/v0/auth",
      );
    }
    this.#sessions.set(session.id, { state: 'attesting', id: session.id, expiresAt: session.expiresAt });
    return session;
  }

  /** Records the token of a successful attestation; the session keeps its original expiry. */
  completeAttestation(id: string, token: string, attestation: T): AttestedSession<T> {
    const session = this.#sessions.get(id);
    if (session?.state !== 'attesting') {
      throw new TresorError(
        'KBS_SESSION_UNKNOWN',
        'the session ended while its evidence was being appraised',
      );
    }
    const attested: AttestedSession<T> = {
      state: 'attested',
      id,
      expiresAt: session.expiresAt,
      token,
      attestation,
    };
    this.#sessions.set(id, attested);
    return attested;
  }

  /** Ends a session (after a failed attestation). */
  end(id: string): void {
    this.#sessions.delete(id);
  }

  #sweep(): void {
    const now = this.#options.now().getTime();
    for (const [id, session] of this.#sessions) {
      if (session.expiresAt.getTime() <= now) this.#sessions.delete(id);
    }
  }
}
