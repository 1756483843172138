import type { Certificate } from '../certs.js';
import { ecPublicKeySpki, type SignatureVerifier, type VerificationKey } from '../signatures/index.js';

/**
 * ECDSA P-256 with SHA-256, the only signature of TDX quotes, QE reports and Intel collateral.
 * Intel encodes signatures as raw r||s (32 bytes each, big-endian), IEEE P1363. Nothing here
 * throws: a key that does not import or a signature that does not verify is simply `undefined` /
 * `false`.
 */

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256_RAW = { name: 'ECDSA', hash: 'SHA-256', encoding: 'ieee-p1363' } as const;

/** Imports a raw x||y public key (the quote's attestation key); undefined if it is not a P-256 point. */
export async function importRawP256Key(
  xy: Uint8Array,
  signatures: SignatureVerifier,
): Promise<VerificationKey | undefined> {
  const spki = ecPublicKeySpki('P-256', xy);
  return spki === undefined ? undefined : signatures.importPublicKey(spki, P256);
}

/** Imports a certificate's P-256 public key; undefined if it holds any other kind of key. */
export async function importCertificateP256Key(
  cert: Certificate,
  signatures: SignatureVerifier,
): Promise<VerificationKey | undefined> {
  let spki: Uint8Array;
  try {
    spki = new Uint8Array(cert.publicKey.rawData);
  } catch {
    return undefined;
  }
  return signatures.importPublicKey(spki, P256);
}

export function verifyP256(
  key: VerificationKey,
  signature: Uint8Array,
  message: Uint8Array,
  signatures: SignatureVerifier,
): Promise<boolean> {
  return signatures.verify(key, ECDSA_SHA256_RAW, signature, message);
}
