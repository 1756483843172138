import { generateKeyPairSync, sign } from 'node:crypto';
import type { CheckpointAlgorithm } from '../audit/audit-checkpoint.js';
import type { CheckpointPublicJwk, CheckpointSigner } from '../audit/checkpoint-keys.js';

const CURVE = { ES256: ['prime256v1', 'sha256'], ES384: ['secp384r1', 'sha384'] } as const;

/**
 * A checkpoint signer with an in-memory key, for tests that need many fast signatures or a
 * second, untrusted key. Production signers come from a keystore (keyStoreCheckpointSigner).
 */
export function generateTestSigner(
  keyId = 'sig-audit-test',
  algorithm: CheckpointAlgorithm = 'ES256',
): CheckpointSigner {
  const [namedCurve, hash] = CURVE[algorithm];
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
  const jwk = publicKey.export({ format: 'jwk' });
  const publicJwk: CheckpointPublicJwk = {
    kty: 'EC',
    crv: algorithm === 'ES256' ? 'P-256' : 'P-384',
    x: String(jwk.x),
    y: String(jwk.y),
    kid: keyId,
    alg: algorithm,
  };
  return {
    keyId,
    algorithm,
    publicJwk,
    sign: (message) =>
      Promise.resolve(new Uint8Array(sign(hash, message, { key: privateKey, dsaEncoding: 'ieee-p1363' }))),
  };
}
