import { ecdsaDerToP1363 } from './ecdsa-signature.js';
import {
  algorithmFitsKey,
  ecdsaComponentSize,
  type PublicKeyAlgorithm,
  type SignatureAlgorithm,
  type SignatureVerifier,
  type VerificationKey,
} from './signature-verifier.js';

/**
 * The SignatureVerifier over WebCrypto (W3C Web Cryptography API §23 ECDSA, §22 RSA-PSS): native
 * code in every browser and in Node, so the same verifiers run client-side. WebCrypto wants ECDSA
 * signatures as r || s, so DER signatures are converted (strictly) first.
 */
class WebCryptoVerificationKey implements VerificationKey {
  constructor(
    readonly algorithm: PublicKeyAlgorithm,
    readonly cryptoKey: CryptoKey,
  ) {}
}

/** A view WebCrypto accepts: the bytes themselves unless they live in a SharedArrayBuffer (then a copy). */
function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : Uint8Array.from(bytes);
}

function importParams(algorithm: PublicKeyAlgorithm): EcKeyImportParams | RsaHashedImportParams {
  return algorithm.name === 'ECDSA'
    ? { name: 'ECDSA', namedCurve: algorithm.namedCurve }
    : { name: 'RSA-PSS', hash: algorithm.hash };
}

export const webCryptoSignatureVerifier: SignatureVerifier = {
  name: 'webcrypto',

  async importPublicKey(spki, algorithm) {
    try {
      const key = await crypto.subtle.importKey('spki', bufferSource(spki), importParams(algorithm), false, [
        'verify',
      ]);
      return new WebCryptoVerificationKey(algorithm, key);
    } catch {
      return undefined;
    }
  },

  async verify(key, algorithm: SignatureAlgorithm, signature, message) {
    if (!(key instanceof WebCryptoVerificationKey) || !algorithmFitsKey(key.algorithm, algorithm)) {
      return false;
    }
    try {
      if (algorithm.name === 'RSA-PSS') {
        return await crypto.subtle.verify(
          { name: 'RSA-PSS', saltLength: algorithm.saltLength },
          key.cryptoKey,
          bufferSource(signature),
          bufferSource(message),
        );
      }
      if (key.algorithm.name !== 'ECDSA') return false;
      const size = ecdsaComponentSize(key.algorithm.namedCurve);
      const raw =
        algorithm.encoding === 'der'
          ? ecdsaDerToP1363(signature, size)
          : signature.length === 2 * size
            ? bufferSource(signature)
            : undefined;
      if (raw === undefined) return false;
      return await crypto.subtle.verify(
        { name: 'ECDSA', hash: algorithm.hash },
        key.cryptoKey,
        raw,
        bufferSource(message),
      );
    } catch {
      return false;
    }
  },
};
