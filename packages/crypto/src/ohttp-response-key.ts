import { TresorError } from '@tresor/protocol';
import { concatBytes, toArrayBuffer, utf8Encode } from './bytes.js';
import { HPKE_KDF, type HpkeKdfId, type HpkeSuite } from './hpke.js';

/**
 * The response key schedule of RFC 9458 §4.4, shared with chunked OHTTP
 * (draft-ietf-ohai-chunked-ohttp-08 §6.2), which changes only the export label:
 *
 *   secret = context.Export(label, max(Nn, Nk))
 *   salt   = enc || response_nonce
 *   prk    = Extract(salt, secret)
 *   key    = Expand(prk, "key", Nk);  nonce = Expand(prk, "nonce", Nn)
 *
 * WebCrypto's HKDF deriveBits is exactly Expand(Extract(salt, ikm), info, L) (RFC 5869 §2), so
 * each output is one deriveBits call; the salt is 48 bytes or more, which rules out the HPKE
 * library's own Extract (it insists on a hash-sized salt).
 */

export const RESPONSE_LABEL = 'message/bhttp response';
export const CHUNKED_RESPONSE_LABEL = 'message/bhttp chunked response';

/** The WebCrypto hash of each HPKE KDF: Extract and Expand are that KDF's (RFC 9458 §4.4). */
const HKDF_HASH: Readonly<Record<HpkeKdfId, string>> = { [HPKE_KDF.HKDF_SHA256]: 'SHA-256' };

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
): Promise<ResponseKeyMaterial> {
  const secret = await context.export(utf8Encode(label), responseNonceLength(suite));
  const ikm = await crypto.subtle.importKey('raw', toArrayBuffer(secret), 'HKDF', false, ['deriveBits']);
  secret.fill(0);
  const salt = toArrayBuffer(concatBytes(enc, responseNonce));
  const expand = async (info: string, length: number): Promise<Uint8Array> =>
    new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: 'HKDF', hash: HKDF_HASH[suite.kdf], salt, info: toArrayBuffer(utf8Encode(info)) },
        ikm,
        length * 8,
      ),
    );
  return { key: await expand('key', suite.keySize), nonce: await expand('nonce', suite.nonceSize) };
}

/**
 * The response AEAD (AES-GCM for every suite Tresor accepts), keyed once; `seal`/`open` take the
 * nonce so chunked responses can XOR in their counter. The key is a non-extractable CryptoKey.
 */
export class ResponseAead {
  /** aead_nonce of RFC 9458 §4.4. */
  readonly baseNonce: Uint8Array;
  readonly tagSize: number;
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey, baseNonce: Uint8Array, tagSize: number) {
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
  ): Promise<ResponseAead> {
    const material = await deriveResponseKeyMaterial(suite, context, label, enc, responseNonce);
    const key = await crypto.subtle.importKey('raw', toArrayBuffer(material.key), 'AES-GCM', false, [
      'encrypt',
      'decrypt',
    ]);
    material.key.fill(0);
    return new ResponseAead(key, material.nonce, suite.tagSize);
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

  async seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv: toArrayBuffer(nonce), additionalData: toArrayBuffer(aad) },
        this.#key,
        toArrayBuffer(plaintext),
      ),
    );
  }

  /** OHTTP_DECRYPT_FAILED when the ciphertext does not authenticate; nothing is released then. */
  async open(nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    if (ciphertext.length < this.tagSize) {
      throw new TresorError('OHTTP_DECRYPT_FAILED', 'the sealed response is shorter than an AEAD tag');
    }
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: toArrayBuffer(nonce), additionalData: toArrayBuffer(aad) },
          this.#key,
          toArrayBuffer(ciphertext),
        ),
      );
    } catch (cause) {
      throw new TresorError(
        'OHTTP_DECRYPT_FAILED',
        'the OHTTP response failed authentication: it was altered, reordered or truncated',
        { cause },
      );
    }
  }
}
