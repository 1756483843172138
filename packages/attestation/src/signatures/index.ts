export {
  algorithmFitsKey,
  ecdsaComponentSize,
  type EcdsaCurve,
  type PublicKeyAlgorithm,
  type SignatureAlgorithm,
  type SignatureHash,
  type SignatureVerifier,
  type VerificationKey,
} from './signature-verifier.js';
export { webCryptoSignatureVerifier } from './webcrypto-signature-verifier.js';
export { ecPublicKeySpki } from './ec-public-key.js';
export { ecdsaDerToP1363 } from './ecdsa-signature.js';
export { signedParts, verifyX509Signature } from './x509-signature.js';
