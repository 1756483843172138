import { createCipheriv, createDecipheriv } from 'node:crypto';
import { requireAesKeyLength, type OhttpAeadBackend, type OhttpAeadKey } from '../ohttp-aead.js';
import { hkdfExpand, hkdfExtract } from './hkdf-sha256.js';
import { nodeOhttpHpke } from './hpke-x25519.js';

/**
 * The OHTTP response primitives on node:crypto, synchronous: AES-GCM through
 * createCipheriv/createDecipheriv (OpenSSL on this thread), HKDF as plain HMAC calls (hkdf-sha256.ts). A 200-byte chunk costs about a microsecond
 * of AES-GCM instead of a WebCrypto job on the thread pool and its promise (20–100 µs under
 * load), which is what a sealed stream pays per server-sent event. Output is byte-identical to
 * the WebCrypto default (same algorithms, same inputs); the tests compare the two.
 */

const TAG_LENGTH = 16;

/**
 * Per-call costs measured on Node 20 / OpenSSL 3.0 (bench/streaming.ts, "Crypto" in
 * bench/RESULTS.md) decided the details: the key is kept as raw bytes in a private Buffer, because
 * createCipheriv with a KeyObject costs about twice as much as with the bytes; sealed output is
 * written once, behind the caller's headroom, into its own ArrayBuffer. Not into Buffer's shared
 * pool, although that is ~0.3 µs cheaper: a consumer that enqueues a chunk into a byte
 * ReadableStream transfers (detaches) its whole ArrayBuffer, which for the pool breaks every later
 * Buffer.allocUnsafe in the process (Node 20). node:crypto's own outputs (update, getAuthTag) have
 * ArrayBuffers of their own.
 */
class NodeAeadKey implements OhttpAeadKey {
  readonly #key: Buffer;
  readonly #algorithm: 'aes-128-gcm' | 'aes-256-gcm';

  constructor(raw: Uint8Array) {
    requireAesKeyLength(raw);
    this.#algorithm = raw.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm';
    // A private copy outside the pool, so it is the key's alone; the caller zeroes `raw`.
    this.#key = Buffer.alloc(raw.length);
    this.#key.set(raw);
  }

  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, headroom: number): Uint8Array {
    const cipher = createCipheriv(this.#algorithm, this.#key, nonce, { authTagLength: TAG_LENGTH });
    if (aad.length > 0) cipher.setAAD(aad);
    const out = new Uint8Array(headroom + plaintext.length + TAG_LENGTH);
    out.set(cipher.update(plaintext), headroom);
    cipher.final(); // GCM has no buffered block: nothing comes out here
    out.set(cipher.getAuthTag(), headroom + plaintext.length);
    return out;
  }

  /** Throws (OpenSSL's "unable to authenticate data") when the tag does not verify. */
  open(nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array {
    const end = ciphertext.length - TAG_LENGTH;
    if (end < 0) throw new RangeError('the ciphertext is shorter than an AES-GCM tag');
    const decipher = createDecipheriv(this.#algorithm, this.#key, nonce, { authTagLength: TAG_LENGTH });
    if (aad.length > 0) decipher.setAAD(aad);
    decipher.setAuthTag(ciphertext.subarray(end));
    const plaintext = decipher.update(ciphertext.subarray(0, end));
    decipher.final(); // verifies the tag: the plaintext is returned only after this
    return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.length);
  }
}

/**
 * node:crypto backend for OHTTP (plain and chunked): the responses, and the HPKE setup of the
 * requests for X25519 suites (hpke-x25519.ts). Pass it as `{ aead: nodeOhttpAead }`
 * to `createChunkedOhttpClient`, `acceptChunkedOhttpRequest`, `encapsulateRequest`,
 * `decapsulateRequest` and the per-chunk exchange functions.
 */
export const nodeOhttpAead: OhttpAeadBackend = Object.freeze({
  name: 'node:crypto',
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    const prk = hkdfExtract(salt, ikm);
    try {
      // A copy in an ArrayBuffer of its own (the caller may zero or transfer it).
      return new Uint8Array(hkdfExpand(prk, [info], length));
    } finally {
      prk.fill(0);
    }
  },
  importAesGcmKey(key: Uint8Array): OhttpAeadKey {
    return new NodeAeadKey(key);
  },
  hpke: nodeOhttpHpke,
});
