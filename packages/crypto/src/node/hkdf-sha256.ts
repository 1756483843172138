import { createHmac } from 'node:crypto';

/**
 * HKDF-SHA256 (RFC 5869) as plain HMAC calls on node:crypto, for the per-request key schedules of
 * HPKE (hpke-x25519.ts) and the OHTTP response (ohttp-aead.ts). hkdfSync does the same work but
 * first wraps the key in a KeyObject and runs a crypto job: about twice the CPU of two HMACs for
 * the 16- and 32-byte outputs these schedules take (Node 20, measured per call with
 * process.cpuUsage: ~14 µs against ~7 µs).
 */

const HASH_LENGTH = 32;
/** The largest output of Expand: 255 blocks (RFC 5869 §2.3). */
export const HKDF_SHA256_MAX_LENGTH = 255 * HASH_LENGTH;
const COUNTERS = Array.from({ length: 256 }, (_, i) => Uint8Array.of(i));

/**
 * HKDF-Extract (RFC 5869 §2.2) of the concatenation of `ikm` (given in parts, so callers need not
 * concatenate them first); an empty salt is HMAC's zero-padded key, as the RFC says.
 */
export function hkdfExtract(salt: Uint8Array, ...ikm: readonly Uint8Array[]): Buffer {
  const hmac = createHmac('sha256', salt);
  for (const part of ikm) hmac.update(part);
  return hmac.digest();
}

/** HKDF-Expand (RFC 5869 §2.3) of the concatenation of `info`, `length` bytes (1..8160). */
export function hkdfExpand(prk: Uint8Array, info: readonly Uint8Array[], length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 1 || length > HKDF_SHA256_MAX_LENGTH) {
    throw new RangeError(`an HKDF-SHA256 output must be 1..${HKDF_SHA256_MAX_LENGTH} bytes`);
  }
  const blocks: Buffer[] = [];
  let previous: Buffer | undefined;
  for (let i = 1; blocks.length * HASH_LENGTH < length; i++) {
    const hmac = createHmac('sha256', prk);
    if (previous !== undefined) hmac.update(previous);
    for (const part of info) hmac.update(part);
    previous = hmac.update(COUNTERS[i]!).digest();
    blocks.push(previous);
  }
  // One block (every output of the HPKE and OHTTP schedules): the digest itself, no copy.
  const out = blocks.length === 1 ? previous! : Buffer.concat(blocks);
  return out.length === length ? out : out.subarray(0, length);
}
