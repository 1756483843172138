import { TresorError } from '@tresor/protocol';

/**
 * Signed admin requests, in the browser: the same bytes as services/trust's `signAdminRequest`
 * (jose's CompactSign), with WebCrypto only. The admin's private key is imported non-extractable,
 * so page script can sign with it but never read it back; it lives as long as the tab.
 *
 * A request is a compact JWS (RFC 7515 §7.1): protected header `{"alg","kid","typ"}` in that order,
 * payload `{"aud","htu","iat","jti","request"}` in that order (JSON.stringify order is insertion
 * order, so the bytes match jose's exactly), signature ES256 (raw r‖s, RFC 7518 §3.4) or EdDSA.
 */
export const ADMIN_REQUEST_TYPE = 'tresor-admin+jwt';
export const ADMIN_MEDIA_TYPE = 'application/jose';
export const ADMIN_PREFIX = '/admin/v0';
const ADMIN_KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

export type AdminAlgorithm = 'ES256' | 'EdDSA';

/** An imported admin key. `privateKey` is non-extractable. */
export interface ConsoleAdminKey {
  readonly id: string;
  readonly algorithm: AdminAlgorithm;
  readonly privateKey: CryptoKey;
}

export interface AdminRequestOptions {
  /** The service's admin audience (its configured issuer name). */
  readonly audience: string;
  /** The operation path, e.g. `/admin/v0/tenants/list`. */
  readonly path: string;
  readonly request: unknown;
  readonly now: Date;
  /** A fresh id (128 random bits by default). */
  readonly jti?: string;
}

export function base64UrlEncode(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const utf8 = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);

/**
 * Imports an admin key file (a private JWK with `kid`, as `tresor trust admin` writes it) as a
 * non-extractable signing key. Throws INPUT_MALFORMED without echoing any of the key.
 */
export async function importAdminKeyJwk(value: unknown): Promise<ConsoleAdminKey> {
  const bad = (why: string): TresorError =>
    new TresorError(
      'INPUT_MALFORMED',
      `the admin key file ${why}; choose the admin key file (a private JWK)`,
    );
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('is not a JWK object');
  const jwk = value as Record<string, unknown>;
  if (typeof jwk.kid !== 'string' || !ADMIN_KEY_ID.test(jwk.kid)) throw bad('has no admin key id (kid)');
  if (typeof jwk.d !== 'string' || !B64URL.test(jwk.d)) throw bad('holds no private key (d)');
  let algorithm: AdminAlgorithm;
  let params: EcKeyImportParams | Algorithm;
  let members: JsonWebKey;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && typeof jwk.x === 'string' && typeof jwk.y === 'string') {
    algorithm = 'ES256';
    params = { name: 'ECDSA', namedCurve: 'P-256' };
    members = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, d: jwk.d };
  } else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.x === 'string') {
    algorithm = 'EdDSA';
    params = { name: 'Ed25519' };
    members = { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d };
  } else {
    throw bad('is not an EC P-256 or Ed25519 key');
  }
  if (jwk.alg !== undefined && jwk.alg !== algorithm) throw bad(`names another algorithm than ${algorithm}`);
  try {
    const privateKey = await crypto.subtle.importKey('jwk', members, params, false, ['sign']);
    return { id: jwk.kid, algorithm, privateKey };
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', 'the admin key file does not hold a valid private key', {
      cause,
    });
  }
}

/** Signs an admin request exactly as services/trust's signAdminRequest does. */
export async function signAdminRequest(key: ConsoleAdminKey, options: AdminRequestOptions): Promise<string> {
  const claims = {
    aud: options.audience,
    htu: options.path,
    iat: Math.floor(options.now.getTime() / 1000),
    jti: options.jti ?? base64UrlEncode(crypto.getRandomValues(new Uint8Array(16))),
    request: options.request,
  };
  const header = { alg: key.algorithm, kid: key.id, typ: ADMIN_REQUEST_TYPE };
  const input = `${base64UrlEncode(utf8(JSON.stringify(header)))}.${base64UrlEncode(utf8(JSON.stringify(claims)))}`;
  const algorithm: AlgorithmIdentifier | EcdsaParams =
    key.algorithm === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };
  const signature = new Uint8Array(await crypto.subtle.sign(algorithm, key.privateKey, utf8(input)));
  return `${input}.${base64UrlEncode(signature)}`;
}
