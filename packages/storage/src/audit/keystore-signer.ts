import { TresorError } from '@tresor/protocol';
import { isCheckpointAlgorithm } from './audit-checkpoint.js';
import { CheckpointKeys, type CheckpointPublicJwk, type CheckpointSigner } from './checkpoint-keys.js';

/**
 * The part of `@tresor/keystore`'s KeyStore a checkpoint signer needs (structural, so storage
 * depends on the keystore only through this seam): ECDSA signing with raw r||s output, and the
 * signing key's public JWK.
 */
export interface SigningKeyStore<Id extends string> {
  sign(keyId: Id, message: Uint8Array): Promise<Uint8Array>;
  publicKey(keyId: Id): Promise<CheckpointPublicJwk>;
}

/**
 * A checkpoint signer backed by a keystore signing key (file, PKCS#11 HSM, or KYOK): the
 * private key never leaves the keystore.
 *
 * @throws TresorError KEY_USAGE_INVALID when the key is not an ES256 / ES384 signing key.
 */
export async function keyStoreCheckpointSigner<Id extends string>(
  store: SigningKeyStore<Id>,
  keyId: Id,
): Promise<CheckpointSigner> {
  const jwk = await store.publicKey(keyId);
  const algorithm = jwk.alg ?? (jwk.crv === 'P-384' ? 'ES384' : 'ES256');
  if (!isCheckpointAlgorithm(algorithm)) {
    throw new TresorError('KEY_USAGE_INVALID', `key ${keyId} is not an ES256 or ES384 signing key`);
  }
  // Parsing refuses a JWK that is not a public P-256 / P-384 key matching its `alg`.
  CheckpointKeys.fromJwks([jwk]);
  return {
    keyId,
    algorithm,
    publicJwk: { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y, kid: keyId, alg: algorithm },
    sign: (message) => store.sign(keyId, message),
  };
}
