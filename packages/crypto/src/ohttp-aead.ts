import { TresorError } from '@tresor/protocol';
import type { HpkeKeyPair, HpkeRecipientContext, HpkeSenderContext, HpkeSuite } from './hpke.js';

/**
 * The symmetric primitives of the OHTTP response key schedule (RFC 9458 §4.4; chunked OHTTP,
 * draft-ietf-ohai-chunked-ohttp-08 §6.2): HKDF-SHA256 and AES-GCM. They are injectable because
 * their cost decides the per-event cost of a sealed stream: WebCrypto (the default, and the only
 * choice in a browser) runs every call as a job on another thread and answers through a promise,
 * 20–100 µs per call under load, while a Node server can run the same AES-GCM synchronously in
 * about a microsecond (`nodeOhttpAead` in `@tresor/crypto/node`). Every backend must produce
 * byte-identical output; the tests check this against the RFC and draft vectors and against
 * each other.
 */

/** A value now or later: synchronous backends answer at once, WebCrypto through a promise. */
export type MaybePromise<T> = T | Promise<T>;

/** An AES-GCM key (16 or 32 bytes) imported once, used for every chunk of one response. */
export interface OhttpAeadKey {
  /**
   * `headroom` bytes for the caller (any content) || ciphertext || 16-byte tag: the caller frames
   * the sealed chunk in place (chunked OHTTP's length prefix) instead of copying it once more.
   */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, headroom: number): MaybePromise<Uint8Array>;
  /**
   * The plaintext, released only after the tag verified; throws (or rejects) with any error
   * otherwise: the caller turns it into OHTTP_DECRYPT_FAILED.
   */
  open(nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): MaybePromise<Uint8Array>;
}

/**
 * HPKE base mode (RFC 9180 §5.1.1) on a platform API, for the suites it handles; `undefined`
 * hands the suite to the HPKE library. Failures carry the codes of `setupSender` (HPKE_KEY_INVALID)
 * and `setupRecipient` (OHTTP_DECRYPT_FAILED, OHTTP_MESSAGE_MALFORMED).
 */
export interface OhttpHpkeBackend {
  /** SetupBaseS to the serialized public key; `ephemeral` is for known-answer tests only. */
  setupBaseSender(
    suite: HpkeSuite,
    recipientPublicKey: Uint8Array,
    info: Uint8Array,
    ephemeral: HpkeKeyPair | Uint8Array | undefined,
  ): MaybePromise<HpkeSenderContext | undefined>;
  /** SetupBaseR with the gateway's key pair for the received `enc`. */
  setupBaseRecipient(
    suite: HpkeSuite,
    keyPair: HpkeKeyPair,
    enc: Uint8Array,
    info: Uint8Array,
  ): MaybePromise<HpkeRecipientContext | undefined>;
}

/** HKDF-SHA256 and AES-GCM for the OHTTP response key schedule (and optionally HPKE setup). */
export interface OhttpAeadBackend {
  /** For diagnostics and benchmarks, e.g. "WebCrypto" or "node:crypto". */
  readonly name: string;
  /** Expand(Extract(salt, ikm), info, length) with SHA-256 (RFC 5869 §2). */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): MaybePromise<Uint8Array>;
  /** Imports a raw AES-GCM key (AES-128 or AES-256 by its length). The caller zeroes `key`. */
  importAesGcmKey(key: Uint8Array): MaybePromise<OhttpAeadKey>;
  /**
   * The HPKE setup of OHTTP requests (key agreement and key schedule): a dozen HMAC and X25519
   * calls per request, each a thread-pool job under WebCrypto. Absent: the HPKE library does it.
   */
  readonly hpke?: OhttpHpkeBackend;
}

/** Choosing a backend: every OHTTP entry point that derives a response key takes this option. */
export interface OhttpAeadOptions {
  /** Default `webCryptoOhttpAead`; on Node, `nodeOhttpAead` from `@tresor/crypto/node`. */
  readonly aead?: OhttpAeadBackend;
}

/** WebCrypto wants ArrayBuffer-backed views; a view of a SharedArrayBuffer is copied first. */
function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  if (bytes.buffer instanceof ArrayBuffer) return bytes as Uint8Array<ArrayBuffer>;
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

class WebCryptoAeadKey implements OhttpAeadKey {
  readonly #key: CryptoKey;

  constructor(key: CryptoKey) {
    this.#key = key;
  }

  async seal(
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
    headroom: number,
  ): Promise<Uint8Array> {
    const sealed = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: bufferSource(nonce), additionalData: bufferSource(aad) },
      this.#key,
      bufferSource(plaintext),
    );
    if (headroom === 0) return new Uint8Array(sealed);
    const out = new Uint8Array(headroom + sealed.byteLength);
    out.set(new Uint8Array(sealed), headroom);
    return out;
  }

  async open(nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: bufferSource(nonce), additionalData: bufferSource(aad) },
        this.#key,
        bufferSource(ciphertext),
      ),
    );
  }
}

/** The browser-safe default: WebCrypto (`crypto.subtle`), keys non-extractable. */
export const webCryptoOhttpAead: OhttpAeadBackend = Object.freeze({
  name: 'WebCrypto',
  async hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
    const key = await crypto.subtle.importKey('raw', bufferSource(ikm), 'HKDF', false, ['deriveBits']);
    return new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: 'HKDF', hash: 'SHA-256', salt: bufferSource(salt), info: bufferSource(info) },
        key,
        length * 8,
      ),
    );
  },
  async importAesGcmKey(key: Uint8Array): Promise<OhttpAeadKey> {
    requireAesKeyLength(key);
    return new WebCryptoAeadKey(
      await crypto.subtle.importKey('raw', bufferSource(key), 'AES-GCM', false, ['encrypt', 'decrypt']),
    );
  },
});

/** AES-128 or AES-256: the only AEADs an OHTTP suite here can name (hpke.ts). */
export function requireAesKeyLength(key: Uint8Array): void {
  if (key.length !== 16 && key.length !== 32) {
    throw new TresorError('INTERNAL_ERROR', `an AES-GCM key is 16 or 32 bytes, not ${key.length}`);
  }
}
