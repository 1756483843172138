import { CompactSign, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { TresorError } from '@tresor/protocol';
import { bytesToBase64Url, utf8Encode } from '@tresor/crypto';
import { ADMIN_KEY_ID, adminAlgorithmOf, type AdminAlgorithm } from './admin-keys.js';
import { ADMIN_REQUEST_TYPE } from './admin-request.js';

/** The private half of an admin key, as `tresor trust admin` holds it. Never serialised but by exportAdminKey. */
export interface AdminSigningKey {
  readonly id: string;
  readonly algorithm: AdminAlgorithm;
  readonly privateKey: CryptoKey;
  /** The public JWK to list in the service config (`admin.keys`). */
  readonly publicJwk: JWK;
}

/** A new admin key pair; the private key exists only in the returned object until exported. */
export async function generateAdminKey(
  id: string,
  algorithm: AdminAlgorithm = 'ES256',
): Promise<AdminSigningKey> {
  checkId(id);
  const { privateKey, publicKey } = await generateKeyPair(algorithm, { extractable: true });
  return { id, algorithm, privateKey, publicJwk: publicJwkOf(await exportJWK(publicKey), id, algorithm) };
}

/** The private JWK (with `kid` and `alg`), for the admin's key file (mode 0600). */
export async function exportAdminKey(key: AdminSigningKey): Promise<JWK> {
  return { ...(await exportJWK(key.privateKey)), kid: key.id, alg: key.algorithm };
}

/**
 * Reads an admin key file: a private JWK with `kid` (the admin key id). Throws INPUT_MALFORMED
 * without echoing any of it.
 */
export async function importAdminKey(jwk: unknown): Promise<AdminSigningKey> {
  const bad = (why: string, cause?: unknown): TresorError =>
    new TresorError('INPUT_MALFORMED', `the admin key file ${why}`, cause === undefined ? {} : { cause });
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw bad('is not a JWK object');
  const members = jwk as Record<string, unknown>;
  if (typeof members.kid !== 'string' || !ADMIN_KEY_ID.test(members.kid))
    throw bad('has no admin key id (kid)');
  if (typeof members.d !== 'string') throw bad('holds no private key (d)');
  const algorithm = adminAlgorithmOf(members);
  if (algorithm === undefined) throw bad('is not an EC P-256 or Ed25519 key');
  try {
    const privateKey = await importJWK(members as JWK, algorithm);
    if (!(privateKey instanceof CryptoKey)) throw new Error('not a CryptoKey');
    const { d: _d, ...publicMembers } = members;
    return {
      id: members.kid,
      algorithm,
      privateKey,
      publicJwk: publicJwkOf(publicMembers, members.kid, algorithm),
    };
  } catch (cause) {
    throw bad('does not hold a valid private key', cause);
  }
}

export interface AdminRequestOptions {
  /** The trust service's `aud` (its issuer name, as its config says). */
  readonly audience: string;
  /** The operation path, e.g. `/admin/v0/reference-values/put`. */
  readonly path: string;
  readonly request: unknown;
  readonly now: Date;
  /** A fresh id; 128 random bits by default. */
  readonly jti?: string;
}

/** Signs an admin request as the trust service verifies it (see admin-request.ts). */
export async function signAdminRequest(key: AdminSigningKey, options: AdminRequestOptions): Promise<string> {
  const claims = {
    aud: options.audience,
    htu: options.path,
    iat: Math.floor(options.now.getTime() / 1000),
    jti: options.jti ?? bytesToBase64Url(crypto.getRandomValues(new Uint8Array(16))),
    request: options.request,
  };
  return new CompactSign(utf8Encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: key.algorithm, kid: key.id, typ: ADMIN_REQUEST_TYPE })
    .sign(key.privateKey);
}

function publicJwkOf(jwk: JWK, id: string, algorithm: AdminAlgorithm): JWK {
  return algorithm === 'ES256'
    ? { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y!, kid: id, alg: algorithm, use: 'sig' }
    : { kty: 'OKP', crv: 'Ed25519', x: jwk.x!, kid: id, alg: algorithm, use: 'sig' };
}

function checkId(id: string): void {
  if (!ADMIN_KEY_ID.test(id)) {
    throw new TresorError(
      'USAGE_INVALID',
      'an admin key id is 1 to 64 characters of letters, digits, ".", "_", "@" and "-"',
    );
  }
}
