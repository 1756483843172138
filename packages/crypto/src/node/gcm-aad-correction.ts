import { createCipheriv, type KeyObject } from 'node:crypto';
import { TresorError } from '@tresor/protocol';

/**
 * Moves an AES-GCM tag from one associated data to another of the same length, for the same key,
 * nonce and ciphertext. This lets the file sealer encrypt each chunk while the plaintext SHA-256
 * (which the header, and so every chunk's AAD, contains) is still being computed on another core,
 * and fix the tags once the digest is known: one read pass instead of two.
 *
 * NIST SP 800-38D §7.1: T = GHASH_H(A ‖ 0^v ‖ C ‖ 0^u ‖ [len(A)]_64 ‖ [len(C)]_64) ⊕ E_K(J_0), with
 * H = E_K(0^128), and (§6.4) GHASH_H(X_1 … X_m) = X_1·H^m ⊕ X_2·H^(m−1) ⊕ … ⊕ X_m·H. GHASH is linear
 * in its blocks, and with len(A) unchanged only the AAD blocks differ, so for AAD blocks A_1 … A_a
 * and A'_1 … A'_a, and m = a + ⌈len(C)/128⌉ + 1 blocks in all:
 *
 *   T(A) = T(A') ⊕ ((A_1⊕A'_1)·H^(a−1) ⊕ … ⊕ (A_a⊕A'_a)) · H^(m−a+1)
 *
 * SECURITY: a tag under the placeholder AAD and the real tag for the same nonce together reveal
 * H (the difference is a known polynomial in H), and H lets anyone forge tags under that key. So
 * placeholder tags, like H, stay in process memory, are never written anywhere, and are zeroed
 * once the real tags are computed. Nonces are not reused: each chunk is encrypted exactly once.
 */
export class GcmAadCorrection {
  /** H as four big-endian 32-bit words: bit 0 of the block is the top bit of word 0. */
  readonly #hashSubkey: Uint32Array;
  /** (A ⊕ A') folded by Horner's rule: Σ D_j·H^(a−j+1). */
  readonly #foldedDelta: Uint32Array;
  readonly #byCiphertextBlocks = new Map<number, Uint8Array>();

  /**
   * `key` is the AES-256-GCM key; `delta` is the XOR of the two AADs (equal lengths). The hash
   * subkey is computed the way GCM does (SP 800-38D Algorithm 4, step 1): one AES block of zeros.
   */
  constructor(key: KeyObject, delta: Uint8Array) {
    const cipher = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const subkey = cipher.update(new Uint8Array(BLOCK_BYTES));
    cipher.final();
    this.#hashSubkey = toWords(subkey, 0);
    subkey.fill(0);
    this.#foldedDelta = new Uint32Array(4);
    const block = new Uint8Array(BLOCK_BYTES);
    for (let offset = 0; offset < delta.length; offset += BLOCK_BYTES) {
      // The last AAD block is zero-padded in both AADs (0^v), so its delta is too.
      block.fill(0);
      block.set(delta.subarray(offset, offset + BLOCK_BYTES));
      xorInto(this.#foldedDelta, toWords(block, 0));
      gfMultiply(this.#foldedDelta, this.#hashSubkey, this.#foldedDelta);
    }
  }

  /** The 16 bytes to XOR into a tag over `ciphertextLength` bytes of ciphertext. */
  forCiphertextLength(ciphertextLength: number): Uint8Array {
    // Remaining blocks after the AAD: the ciphertext blocks and the length block.
    const exponent = Math.ceil(ciphertextLength / BLOCK_BYTES) + 1;
    let correction = this.#byCiphertextBlocks.get(exponent);
    if (correction === undefined) {
      const power = gfPower(this.#hashSubkey, exponent);
      gfMultiply(power, this.#foldedDelta, power);
      correction = fromWords(power);
      power.fill(0);
      this.#byCiphertextBlocks.set(exponent, correction);
    }
    return correction;
  }

  /** Turns `tag` (computed under the placeholder AAD) into the tag under the real AAD, in place. */
  correct(tag: Uint8Array, ciphertextLength: number): void {
    if (tag.length !== BLOCK_BYTES) throw new TresorError('INTERNAL_ERROR', 'a GCM tag must be 16 bytes');
    const correction = this.forCiphertextLength(ciphertextLength);
    for (let i = 0; i < BLOCK_BYTES; i++) tag[i]! ^= correction[i]!;
  }

  /** Zeroes H and everything derived from it. */
  dispose(): void {
    this.#hashSubkey.fill(0);
    this.#foldedDelta.fill(0);
    for (const correction of this.#byCiphertextBlocks.values()) correction.fill(0);
    this.#byCiphertextBlocks.clear();
  }
}

const BLOCK_BYTES = 16;
/** R = 11100001 ‖ 0^120 (SP 800-38D §6.3), the reduction constant, in the top byte of word 0. */
const R = 0xe1000000;

function toWords(bytes: Uint8Array, offset: number): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, BLOCK_BYTES);
  return Uint32Array.of(view.getUint32(0), view.getUint32(4), view.getUint32(8), view.getUint32(12));
}

function fromWords(words: Uint32Array): Uint8Array {
  const bytes = new Uint8Array(BLOCK_BYTES);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 4; i++) view.setUint32(4 * i, words[i]!);
  return bytes;
}

function xorInto(target: Uint32Array, source: Uint32Array): void {
  for (let i = 0; i < 4; i++) target[i] = target[i]! ^ source[i]!;
}

/**
 * X·Y in GF(2^128) with GCM's bit order (SP 800-38D §6.3, Algorithm 1), into `out` (which may
 * alias X or Y). Branch-free in the operands, since H is secret.
 */
function gfMultiply(x: Uint32Array, y: Uint32Array, out: Uint32Array): void {
  let z0 = 0;
  let z1 = 0;
  let z2 = 0;
  let z3 = 0;
  let v0 = y[0]!;
  let v1 = y[1]!;
  let v2 = y[2]!;
  let v3 = y[3]!;
  for (let i = 0; i < 128; i++) {
    const take = -((x[i >>> 5]! >>> (31 - (i & 31))) & 1);
    z0 ^= v0 & take;
    z1 ^= v1 & take;
    z2 ^= v2 & take;
    z3 ^= v3 & take;
    const reduce = -(v3 & 1);
    v3 = (v3 >>> 1) | (v2 << 31);
    v2 = (v2 >>> 1) | (v1 << 31);
    v1 = (v1 >>> 1) | (v0 << 31);
    v0 = (v0 >>> 1) ^ (R & reduce);
  }
  out[0] = z0;
  out[1] = z1;
  out[2] = z2;
  out[3] = z3;
}

/** H^exponent (exponent ≥ 1) by square-and-multiply; the exponent is public (a length). */
function gfPower(h: Uint32Array, exponent: number): Uint32Array {
  const result = Uint32Array.from(h);
  const bits = exponent.toString(2);
  for (let i = 1; i < bits.length; i++) {
    gfMultiply(result, result, result);
    if (bits[i] === '1') gfMultiply(result, h, result);
  }
  return result;
}
