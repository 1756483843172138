import { toArrayBuffer } from '@tresor/crypto';
import type { Certificate } from '../certs.js';

/**
 * ECDSA P-256 with SHA-256 over WebCrypto (native in Node and browsers). Intel encodes signatures
 * as raw r||s (32 bytes each, big-endian), which is exactly WebCrypto's ECDSA signature format
 * (IEEE P1363), so no DER conversion is needed. Nothing here throws: a key that does not import
 * or a signature that does not verify is simply `undefined` / `false`.
 */

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Imports a raw x||y public key (the quote's attestation key); undefined if it is not a P-256 point. */
export async function importRawP256Key(xy: Uint8Array): Promise<CryptoKey | undefined> {
  if (xy.length !== 64) return undefined;
  const uncompressed = new Uint8Array(65);
  uncompressed[0] = 0x04;
  uncompressed.set(xy, 1);
  try {
    return await crypto.subtle.importKey('raw', uncompressed, P256, false, ['verify']);
  } catch {
    return undefined;
  }
}

/** Imports a certificate's P-256 public key; undefined if it holds any other kind of key. */
export async function importCertificateP256Key(cert: Certificate): Promise<CryptoKey | undefined> {
  try {
    return await crypto.subtle.importKey('spki', cert.publicKey.rawData, P256, false, ['verify']);
  } catch {
    return undefined;
  }
}

export async function verifyP256(
  key: CryptoKey,
  signature: Uint8Array,
  message: Uint8Array,
): Promise<boolean> {
  if (signature.length !== 64) return false;
  try {
    // Copies: WebCrypto refuses views of a SharedArrayBuffer, and these are views into the quote.
    return await crypto.subtle.verify(ECDSA_SHA256, key, toArrayBuffer(signature), toArrayBuffer(message));
  } catch {
    return false;
  }
}
