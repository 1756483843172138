import { TresorError } from '@tresor/protocol';
import { concatBytes, utf8Encode } from './bytes.js';
import type { HpkeSuite } from './hpke.js';
import {
  webCryptoOhttpAead,
  type MaybePromise,
  type OhttpAeadBackend,
  type OhttpAeadKey,
} from './ohttp-aead.js';

/**
 * The response key schedule of RFC 9458 §4.4, shared with chunked OHTTP
 * (draft-ietf-ohai-chunked-ohttp-08 §6.2), which changes only the export label:
 *
 *   secret = context.Export(label, max(Nn, Nk))
 *   salt   = enc || response_nonce
 *   prk    = Extract(salt, secret)
 *   key    = Expand(prk, "key", Nk);  nonce = Expand(prk, "nonce", Nn)
 *
 * Extract and Expand run as one HKDF call per output on the injected backend (ohttp-aead.ts;
 * WebCrypto's HKDF deriveBits is exactly Expand(Extract(salt, ikm), info, L), RFC 5869 §2); the
 * salt is 48 bytes or more, which rules out the HPKE library's own Extract (it insists on a
 * hash-sized salt).
 */

export const RESPONSE_LABEL = 'message/bhttp response';
export const CHUNKED_RESPONSE_LABEL = 'message/bhttp chunked response';

/** The length of the response nonce, and of the exported secret: max(Nn, Nk). */
export function responseNonceLength(suite: HpkeSuite): number {
  return Math.max(suite.nonceSize, suite.keySize);
}

/** Options for `OhttpResponder.encapsulateResponse`. */
export interface OhttpResponseOptions {
  /**
   * FOR KNOWN-ANSWER TESTS ONLY: a fixed response nonce of max(Nn, Nk) bytes instead of a random
   * one. A repeated nonce repeats the response key and nonce; production code never sets this.
   */
  readonly testResponseNonce?: Uint8Array;
}

/** The response nonce: random, or the test-supplied one after a length check. */
export function makeResponseNonce(length: number, testNonce: Uint8Array | undefined): Uint8Array {
  if (testNonce === undefined) return crypto.getRandomValues(new Uint8Array(length));
  if (testNonce.length !== length) {
    throw new TresorError('INTERNAL_ERROR', `a response nonce must be ${length} bytes`);
  }
  return testNonce.slice();
}

/** Anything that can Export from an HPKE context (both sides can). */
export interface SecretExporter {
  export(exporterContext: Uint8Array, length: number): Promise<Uint8Array>;
}

/** Raw response key and nonce, for known-answer tests; production code uses `ResponseAead`. */
export interface ResponseKeyMaterial {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
}

export async function deriveResponseKeyMaterial(
  suite: HpkeSuite,
  context: SecretExporter,
  label: string,
  enc: Uint8Array,
  responseNonce: Uint8Array,
  backend: OhttpAeadBackend = webCryptoOhttpAead,
): Promise<ResponseKeyMaterial> {
  // HKDF-SHA256 is the only KDF an HpkeSuite can name (hpke.ts HPKE_KDF), so it is the one used.
  const secret = await context.export(utf8Encode(label), responseNonceLength(suite));
  try {
    const salt = concatBytes(enc, responseNonce);
    const [key, nonce] = await Promise.all([
      backend.hkdfSha256(secret, salt, KEY_INFO, suite.keySize),
      backend.hkdfSha256(secret, salt, NONCE_INFO, suite.nonceSize),
    ]);
    return { key, nonce };
  } finally {
    secret.fill(0);
  }
}

const KEY_INFO = utf8Encode('key');
const NONCE_INFO = utf8Encode('nonce');

/** Turns any failure to open into OHTTP_DECRYPT_FAILED: nothing about the cause is released. */
function decryptFailed(cause: unknown): TresorError {
  return new TresorError(
    'OHTTP_DECRYPT_FAILED',
    'the OHTTP response failed authentication: it was altered, reordered or truncated',
    { cause },
  );
}

/**
 * The response AEAD (AES-GCM for every suite Tresor accepts), keyed once; `seal`/`open` take the
 * nonce so chunked responses can XOR in their counter. The key lives inside the backend (a
 * non-extractable CryptoKey, or a node:crypto KeyObject); with a synchronous backend `seal` and
 * `open` answer synchronously, so a chunk costs no thread-pool round trip.
 */
export class ResponseAead {
  /** aead_nonce of RFC 9458 §4.4. */
  readonly baseNonce: Uint8Array;
  readonly tagSize: number;
  readonly #key: OhttpAeadKey;

  private constructor(key: OhttpAeadKey, baseNonce: Uint8Array, tagSize: number) {
    this.#key = key;
    this.baseNonce = baseNonce;
    this.tagSize = tagSize;
  }

  static async derive(
    suite: HpkeSuite,
    context: SecretExporter,
    label: string,
    enc: Uint8Array,
    responseNonce: Uint8Array,
    backend: OhttpAeadBackend = webCryptoOhttpAead,
  ): Promise<ResponseAead> {
    const material = await deriveResponseKeyMaterial(suite, context, label, enc, responseNonce, backend);
    try {
      return new ResponseAead(await backend.importAesGcmKey(material.key), material.nonce, suite.tagSize);
    } finally {
      material.key.fill(0);
    }
  }

  /**
   * aead_nonce XOR the big-endian `counter` in Nn bytes (chunked OHTTP §6.2). Counters stay
   * below 2^53, far under the 256^Nn chunks after which the nonce would repeat.
   */
  chunkNonce(counter: number): Uint8Array {
    const nonce = this.baseNonce.slice();
    let rest = counter;
    for (let i = nonce.length - 1; i >= 0 && rest > 0; i--) {
      nonce[i]! ^= rest % 256;
      rest = Math.floor(rest / 256);
    }
    return nonce;
  }

  /**
   * `headroom` free bytes || ciphertext || tag (see OhttpAeadKey.seal); synchronous when the
   * backend is.
   */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, headroom = 0): MaybePromise<Uint8Array> {
    return this.#key.seal(nonce, plaintext, aad, headroom);
  }

  /**
   * OHTTP_DECRYPT_FAILED when the ciphertext does not authenticate; nothing is released then.
   * Synchronous when the backend is (it throws instead of rejecting).
   */
  open(nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): MaybePromise<Uint8Array> {
    if (ciphertext.length < this.tagSize) {
      throw new TresorError('OHTTP_DECRYPT_FAILED', 'the sealed response is shorter than an AEAD tag');
    }
    let opened: MaybePromise<Uint8Array>;
    try {
      opened = this.#key.open(nonce, ciphertext, aad);
    } catch (cause) {
      throw decryptFailed(cause);
    }
    if (opened instanceof Promise) {
      return opened.catch((cause: unknown) => {
        throw decryptFailed(cause);
      });
    }
    return opened;
  }
}
