import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import {
  algorithmFitsKey,
  ecdsaComponentSize,
  type PublicKeyAlgorithm,
  type SignatureAlgorithm,
  type SignatureHash,
  type SignatureVerifier,
  type VerificationKey,
} from '../signatures/signature-verifier.js';

/**
 * The SignatureVerifier over `node:crypto`: `crypto.verify` on a KeyObject made once per key, run
 * synchronously on the calling thread. Node's WebCrypto does the same OpenSSL work but schedules
 * each verify as a job on the libuv thread pool and copies its inputs; for a 60 µs P-256 verify
 * that overhead is a large share (measured in bench/RESULTS.md). Node-only: browsers get the
 * WebCrypto implementation.
 *
 * It accepts and refuses exactly what the WebCrypto implementation does: keys of the requested
 * type and curve only, r || s signatures of exactly the curve's size, DER signatures only in
 * canonical form (OpenSSL re-encodes and compares), RSA-PSS with MGF1 of the same hash and the
 * exact salt length.
 */
class NodeVerificationKey implements VerificationKey {
  constructor(
    readonly algorithm: PublicKeyAlgorithm,
    readonly keyObject: KeyObject,
  ) {}
}

const DIGEST: Readonly<Record<SignatureHash, string>> = {
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
};

/** OpenSSL's names of the NIST curves (`asymmetricKeyDetails.namedCurve`). */
const OPENSSL_CURVE = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' } as const;

function importSync(spki: Uint8Array, algorithm: PublicKeyAlgorithm): VerificationKey | undefined {
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
  if (algorithm.name === 'ECDSA') {
    const fits =
      keyObject.asymmetricKeyType === 'ec' &&
      keyObject.asymmetricKeyDetails?.namedCurve === OPENSSL_CURVE[algorithm.namedCurve];
    return fits ? new NodeVerificationKey(algorithm, keyObject) : undefined;
  }
  const rsa = keyObject.asymmetricKeyType === 'rsa' || keyObject.asymmetricKeyType === 'rsa-pss';
  return rsa ? new NodeVerificationKey(algorithm, keyObject) : undefined;
}

function verifySync(
  key: VerificationKey,
  algorithm: SignatureAlgorithm,
  signature: Uint8Array,
  message: Uint8Array,
): boolean {
  if (!(key instanceof NodeVerificationKey) || !algorithmFitsKey(key.algorithm, algorithm)) return false;
  try {
    if (algorithm.name === 'RSA-PSS') {
      return verify(
        DIGEST[algorithm.hash],
        message,
        { key: key.keyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.saltLength },
        signature,
      );
    }
    if (key.algorithm.name !== 'ECDSA') return false;
    if (
      algorithm.encoding === 'ieee-p1363' &&
      signature.length !== 2 * ecdsaComponentSize(key.algorithm.namedCurve)
    ) {
      return false;
    }
    return verify(
      DIGEST[algorithm.hash],
      message,
      { key: key.keyObject, dsaEncoding: algorithm.encoding },
      signature,
    );
  } catch {
    return false;
  }
}

export const nodeSignatureVerifier: SignatureVerifier = {
  name: 'node:crypto',
  importPublicKey: (spki, algorithm) => Promise.resolve(importSync(spki, algorithm)),
  verify: (key, algorithm, signature, message) =>
    Promise.resolve(verifySync(key, algorithm, signature, message)),
};
