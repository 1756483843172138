import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import {
  checkpointSigningInput,
  isCheckpointAlgorithm,
  type AuditCheckpoint,
  type CheckpointAlgorithm,
} from './audit-checkpoint.js';

/** An EC public key as a JWK (RFC 7517 §4, RFC 7518 §6.2): what the keystore's `publicKey` returns. */
export interface CheckpointPublicJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256' | 'P-384';
  readonly x: string;
  readonly y: string;
  readonly kid?: string;
  readonly alg?: string;
}

/**
 * Signs checkpoints. Backed by a keystore signing key (see `keyStoreCheckpointSigner`), so the
 * private key stays in the HSM or keystore; the public key is what verifiers are given.
 */
export interface CheckpointSigner {
  readonly keyId: string;
  readonly algorithm: CheckpointAlgorithm;
  readonly publicJwk: CheckpointPublicJwk;
  /** ECDSA over `message` with the algorithm's hash; raw r||s (RFC 7518 §3.4). */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

interface TrustedKey {
  /** Undefined for a PEM key, which carries no id: it then verifies checkpoints of any key id. */
  readonly kid: string | undefined;
  readonly algorithm: CheckpointAlgorithm;
  readonly key: KeyObject;
}

const CURVES: Readonly<Record<string, { algorithm: CheckpointAlgorithm; crv: 'P-256' | 'P-384' }>> = {
  'P-256': { algorithm: 'ES256', crv: 'P-256' },
  'P-384': { algorithm: 'ES384', crv: 'P-384' },
  prime256v1: { algorithm: 'ES256', crv: 'P-256' },
  secp384r1: { algorithm: 'ES384', crv: 'P-384' },
};
const HASH: Readonly<Record<CheckpointAlgorithm, string>> = { ES256: 'sha256', ES384: 'sha384' };

function malformed(problem: string): TresorError {
  return new TresorError('INPUT_MALFORMED', `checkpoint public key: ${problem}`);
}

function trustedJwk(value: unknown): TrustedKey {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed('a JWK is an object');
  const jwk = value as Record<string, unknown>;
  if ('d' in jwk) throw malformed('this is a private key; give the public key only');
  if (jwk.kty !== 'EC') throw malformed('kty is not EC');
  const curve =
    typeof jwk.crv === 'string' && (jwk.crv === 'P-256' || jwk.crv === 'P-384') ? CURVES[jwk.crv] : undefined;
  if (curve === undefined) throw malformed('crv is not P-256 or P-384');
  if (jwk.alg !== undefined && jwk.alg !== curve.algorithm)
    throw malformed(`alg does not match ${curve.crv}`);
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') throw malformed('kid is not a string');
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw malformed('x or y is missing');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', 'checkpoint public key: x and y are not a point on the curve', {
      cause,
    });
  }
  return { kid: jwk.kid, algorithm: curve.algorithm, key };
}

function trustedPem(text: string): TrustedKey {
  if (text.includes('PRIVATE KEY')) throw malformed('this is a private key; give the public key only');
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', 'checkpoint public key: not a PEM public key', { cause });
  }
  const namedCurve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const curve = namedCurve === undefined ? undefined : CURVES[namedCurve];
  if (curve === undefined) throw malformed('not an EC P-256 or P-384 key');
  return { kid: undefined, algorithm: curve.algorithm, key };
}

/**
 * The public keys a verifier trusts for checkpoints. Only public keys: a private key given by
 * mistake is refused, so it never ends up in a command line history or a CI secret by habit.
 */
export class CheckpointKeys {
  readonly #keys: readonly TrustedKey[];

  private constructor(keys: readonly TrustedKey[]) {
    if (keys.length === 0) throw malformed('no keys');
    this.#keys = keys;
  }

  /** From JWKs, e.g. a signer's `publicJwk`. */
  static fromJwks(jwks: readonly unknown[]): CheckpointKeys {
    return new CheckpointKeys(jwks.map(trustedJwk));
  }

  /**
   * Parses a key file: a JWK, a JWK Set (`{"keys": [...]}`, for checkpoints made before a key
   * rotation), or a PEM SubjectPublicKeyInfo.
   *
   * @throws TresorError INPUT_MALFORMED for anything else, and for private keys.
   */
  static parse(text: string): CheckpointKeys {
    if (text.length > 1_000_000) throw malformed('the key file is larger than 1 MB');
    const trimmed = text.trim();
    if (trimmed.startsWith('-----BEGIN')) return new CheckpointKeys([trustedPem(trimmed)]);
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      throw malformed('neither JSON (JWK, JWK Set) nor PEM');
    }
    if (typeof value === 'object' && value !== null && 'keys' in value) {
      const keys = value.keys;
      if (!Array.isArray(keys)) throw malformed('"keys" of a JWK Set is not an array');
      return CheckpointKeys.fromJwks(keys);
    }
    return CheckpointKeys.fromJwks([value]);
  }

  /** Why `checkpoint` does not verify, or undefined when it does. */
  problemWith(checkpoint: AuditCheckpoint): string | undefined {
    const byId = this.#keys.filter((k) => k.kid === checkpoint.keyId);
    const candidates = byId.length > 0 ? byId : this.#keys.filter((k) => k.kid === undefined);
    if (candidates.length === 0)
      return `it is signed by key "${checkpoint.keyId}", which is not a trusted key`;
    const key = candidates.find((k) => k.algorithm === checkpoint.algorithm);
    if (key === undefined || !isCheckpointAlgorithm(checkpoint.algorithm)) {
      return `its algorithm ${checkpoint.algorithm} does not match the trusted key`;
    }
    const valid = verify(
      HASH[key.algorithm],
      checkpointSigningInput(checkpoint),
      { key: key.key, dsaEncoding: 'ieee-p1363' },
      checkpoint.signature,
    );
    return valid ? undefined : 'its signature does not verify';
  }
}
