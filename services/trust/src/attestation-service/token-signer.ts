import { TresorError } from '@tresor/protocol';
import type { KeyId, KeyStore } from '@tresor/keystore';
import { toArrayBuffer } from '@tresor/crypto';

/**
 * Who signs attestation tokens. The production signer is a keystore signing key (file keystore
 * locally, PKCS#11 HSM in production): the private key never leaves the keystore, and ES256
 * signatures come back as raw r||s, which is the JWS form (RFC 7518 §3.4). An in-memory signer
 * (ES256 or EdDSA, RFC 8037) serves local runs and tests.
 */
export interface TokenSigner {
  readonly algorithm: 'ES256' | 'EdDSA';
  readonly keyId: string;
  /** The public key as published in the JWKS (`kid`, `alg`, `use: "sig"`). */
  readonly publicJwk: Readonly<Record<string, string>>;
  /** Signs the JWS signing input (RFC 7515 §5.1 step 5); returns the JWS signature bytes. */
  sign(signingInput: Uint8Array): Promise<Uint8Array>;
}

/** A signer backed by an ES256 keystore signing key. @throws TresorError KEY_USAGE_INVALID for other keys. */
export async function keyStoreTokenSigner(store: KeyStore, keyId: KeyId): Promise<TokenSigner> {
  const jwk = await store.publicKey(keyId);
  if (jwk.alg !== 'ES256' || jwk.crv !== 'P-256') {
    // Relying parties (the KYOK key server, Trustee) accept ES256 and EdDSA tokens only.
    throw new TresorError(
      'KEY_USAGE_INVALID',
      `key ${keyId} is ${jwk.alg}; attestation tokens are signed with ES256`,
    );
  }
  return {
    algorithm: 'ES256',
    keyId,
    publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid: keyId, alg: 'ES256', use: 'sig' },
    sign: (input) => store.sign(keyId, input),
  };
}

/** An in-memory signer with a fresh non-extractable key (local runs, tests). */
export async function generateTokenSigner(algorithm: 'ES256' | 'EdDSA', keyId: string): Promise<TokenSigner> {
  const params = algorithm === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' };
  const pair = (await crypto.subtle.generateKey(params, false, ['sign', 'verify'])) as CryptoKeyPair;
  const exported = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const publicJwk: Record<string, string> =
    algorithm === 'ES256'
      ? { kty: 'EC', crv: 'P-256', x: exported.x ?? '', y: exported.y ?? '' }
      : { kty: 'OKP', crv: 'Ed25519', x: exported.x ?? '' };
  const signParams = algorithm === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };
  return {
    algorithm,
    keyId,
    publicJwk: { ...publicJwk, kid: keyId, alg: algorithm, use: 'sig' },
    sign: async (input) =>
      new Uint8Array(await crypto.subtle.sign(signParams, pair.privateKey, toArrayBuffer(input))),
  };
}
