/**
 * The one place attestation verification checks a signature. Every signature the verifiers meet is
 * ECDSA (P-256 or P-384) or RSA-PSS: SEV-SNP reports (ECDSA P-384/SHA-384), the AMD chain (RSA-PSS
 * SHA-384, salt 48), TDX quotes, QE reports and Intel collateral (ECDSA P-256/SHA-256), NVIDIA SPDM
 * responses and device chains (ECDSA P-384/SHA-384). The interface is small so it can be
 * implemented twice: over WebCrypto (the default; runs in browsers, where the SDK verifies evidence
 * client-side) and over `node:crypto` (`@tresor/attestation/node`), which skips WebCrypto's
 * thread-pool hop and copies and is what servers and the CLI use.
 *
 * Implementations never throw: a key that does not import is `undefined`, a signature that does not
 * verify, is malformed, or was made for another algorithm is `false`.
 */

export type SignatureHash = 'SHA-256' | 'SHA-384' | 'SHA-512';
export type EcdsaCurve = 'P-256' | 'P-384';

/**
 * What a public key is used for, fixed at import (WebCrypto binds a key to its algorithm): an ECDSA
 * key on a named curve, or an RSA key for RSASSA-PSS with one hash (RFC 8017 §8.1).
 */
export type PublicKeyAlgorithm =
  | { readonly name: 'ECDSA'; readonly namedCurve: EcdsaCurve }
  | { readonly name: 'RSA-PSS'; readonly hash: SignatureHash };

/**
 * How a signature is encoded and computed. ECDSA signatures come raw as r || s, each the curve's
 * size big-endian (IEEE P1363, as Intel and SPDM write them), or as the DER `ECDSA-Sig-Value` of
 * X.509 (RFC 5480 §2.2.3, RFC 3279 §2.2.3). RSA-PSS uses MGF1 with the same hash (RFC 8017 §9.1).
 */
export type SignatureAlgorithm =
  | { readonly name: 'ECDSA'; readonly hash: SignatureHash; readonly encoding: 'ieee-p1363' | 'der' }
  | { readonly name: 'RSA-PSS'; readonly hash: SignatureHash; readonly saltLength: number };

/** An imported public key; opaque outside the implementation that made it. */
export interface VerificationKey {
  readonly algorithm: PublicKeyAlgorithm;
}

export interface SignatureVerifier {
  /** Names the implementation in benchmarks and test titles (`webcrypto`, `node:crypto`). */
  readonly name: string;
  /**
   * Imports a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) for `algorithm`; undefined when it is not
   * a valid key of that kind (wrong key type, another curve, a point not on the curve).
   */
  importPublicKey(spki: Uint8Array, algorithm: PublicKeyAlgorithm): Promise<VerificationKey | undefined>;
  /**
   * True only when `signature` over `message` verifies under `key` with `algorithm`. False for a key
   * of another implementation, an algorithm that does not fit the key, or a malformed signature.
   */
  verify(
    key: VerificationKey,
    algorithm: SignatureAlgorithm,
    signature: Uint8Array,
    message: Uint8Array,
  ): Promise<boolean>;
}

/** Bytes of one ECDSA integer (r or s) on `curve`: the field size (FIPS 186-5 §6.4). */
export function ecdsaComponentSize(curve: EcdsaCurve): number {
  return curve === 'P-256' ? 32 : 48;
}

/** True when an algorithm may be used with a key: ECDSA with an EC key, RSA-PSS with the key's own hash. */
export function algorithmFitsKey(key: PublicKeyAlgorithm, algorithm: SignatureAlgorithm): boolean {
  if (key.name === 'ECDSA') return algorithm.name === 'ECDSA';
  return algorithm.name === 'RSA-PSS' && algorithm.hash === key.hash;
}
