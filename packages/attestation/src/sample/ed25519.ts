import { ed25519 } from '@noble/curves/ed25519.js';

/**
 * Ed25519 (RFC 8032) for the sample TEE's installation key on WebCrypto's native Ed25519 where the
 * platform has it (Node 20, current browsers), and on the pure-JS @noble/curves otherwise. Native
 * verification costs ~0.1 ms against ~1.5 ms in JS, signing ~0.07 ms against ~0.7 ms, and every key
 * release signs and verifies one sample evidence.
 *
 * Signing gives the same bytes on both paths (Ed25519 signatures are deterministic, §5.1.6).
 * Verification (§5.1.7) is strict on both paths, and the native one is never more lenient than
 * the JS one:
 *
 * - the public key is checked once, here, as @noble's `zip215: false` checks it: a canonical
 *   encoding (y < p, RFC 8032 §5.1.3), a point on the curve, not of small order. A key failing
 *   that verifies nothing, whatever the platform would have said;
 * - S must be below the group order L and R must be the canonical encoding of the recomputed
 *   point: OpenSSL (Node) and BoringSSL (Chrome) compare R byte for byte and check S < L, as
 *   RFC 8032 §5.1.7 step 1 requires;
 * - OpenSSL checks the cofactorless equation [S]B = R + [k]A, which implies the cofactored one
 *   @noble checks ([8][S]B = [8]R + [8][k]A), so whatever it accepts @noble accepts too.
 */
export type Ed25519Verify = (signature: Uint8Array, message: Uint8Array) => Promise<boolean>;

const PUBLIC_KEY_LENGTH = 32;
const SIGNATURE_LENGTH = 64;

/** True when `bytes` is a key @noble's strict verification would use (see above). */
function isStrictPublicKey(bytes: Uint8Array): boolean {
  if (bytes.length !== PUBLIC_KEY_LENGTH) return false;
  try {
    return !ed25519.Point.fromBytes(bytes, false).isSmallOrder();
  } catch {
    return false;
  }
}

function jsVerify(publicKey: Uint8Array): Ed25519Verify {
  return (signature, message) => {
    try {
      return Promise.resolve(ed25519.verify(signature, message, publicKey, { zip215: false }));
    } catch {
      return Promise.resolve(false);
    }
  };
}

/** A view WebCrypto accepts: the bytes themselves unless they live in a SharedArrayBuffer. */
export function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : Uint8Array.from(bytes);
}

/** WebCrypto where the platform offers it; browsers expose `crypto.subtle` in secure contexts only. */
export function platformSubtle(): SubtleCrypto | null {
  return (globalThis.crypto as Partial<Crypto> | undefined)?.subtle ?? null;
}

/** PKCS#8 OneAsymmetricKey for id-Ed25519 (RFC 8410 §7): this prefix, then the 32-byte seed. */
const PKCS8_SEED_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/**
 * Imports a 32-byte seed as a non-extractable WebCrypto signing key; undefined where WebCrypto has
 * no Ed25519 (then sign with @noble). The PKCS#8 copy of the seed is zeroed once imported.
 */
export async function importEd25519SigningKey(
  seed: Uint8Array,
  subtle: SubtleCrypto | null = platformSubtle(),
): Promise<CryptoKey | undefined> {
  if (subtle === null) return undefined;
  const pkcs8 = new Uint8Array(PKCS8_SEED_PREFIX.length + seed.length);
  pkcs8.set(PKCS8_SEED_PREFIX);
  pkcs8.set(seed, PKCS8_SEED_PREFIX.length);
  try {
    return await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
  } catch {
    return undefined;
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * A verifier for one public key. `subtle` is injectable so tests can run the JS path (`null`);
 * without WebCrypto, or where its `importKey` refuses Ed25519, the JS path runs. Never rejects: a
 * malformed signature, a wrong key or a platform error is `false`.
 */
export function ed25519Verifier(
  publicKey: Uint8Array,
  subtle: SubtleCrypto | null = platformSubtle(),
): Ed25519Verify {
  const key = Uint8Array.from(publicKey);
  if (!isStrictPublicKey(key)) return () => Promise.resolve(false);
  const fallback = jsVerify(key);
  if (subtle === null) return fallback;
  // Imported once, on first use; a platform without Ed25519 in WebCrypto answers NotSupportedError.
  let imported: Promise<CryptoKey | undefined> | undefined;
  const cryptoKey = (): Promise<CryptoKey | undefined> =>
    (imported ??= subtle
      .importKey('raw', bufferSource(key), { name: 'Ed25519' }, false, ['verify'])
      .catch(() => undefined));
  return async (signature, message) => {
    if (signature.length !== SIGNATURE_LENGTH) return false;
    const native = await cryptoKey();
    if (native === undefined) return fallback(signature, message);
    try {
      return await subtle.verify({ name: 'Ed25519' }, native, bufferSource(signature), bufferSource(message));
    } catch {
      return false;
    }
  };
}
