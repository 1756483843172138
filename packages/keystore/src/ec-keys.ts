import { TresorError } from '@tresor/protocol';
import { bytesToBase64Url } from '@tresor/crypto';
import type { EcPublicJwk, SigningAlgorithm } from './key-store.js';

/** The curve and hash behind each JOSE ECDSA algorithm (RFC 7518 §3.4). */
export interface EcCurve {
  readonly algorithm: SigningAlgorithm;
  readonly crv: 'P-256' | 'P-384';
  /** OpenSSL / node:crypto curve name. */
  readonly namedCurve: 'prime256v1' | 'secp384r1';
  readonly hash: 'sha256' | 'sha384';
  /** Bytes per coordinate and per signature half (r, s). */
  readonly size: 32 | 48;
  /** DER of the curve's OBJECT IDENTIFIER, as PKCS#11 CKA_EC_PARAMS wants it (RFC 5480 §2.1.1.1). */
  readonly oidDer: Uint8Array;
}

const CURVES: Readonly<Record<SigningAlgorithm, EcCurve>> = {
  ES256: {
    algorithm: 'ES256',
    crv: 'P-256',
    namedCurve: 'prime256v1',
    hash: 'sha256',
    size: 32,
    oidDer: Uint8Array.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
  },
  ES384: {
    algorithm: 'ES384',
    crv: 'P-384',
    namedCurve: 'secp384r1',
    hash: 'sha384',
    size: 48,
    oidDer: Uint8Array.from([0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
  },
};

export function curveFor(algorithm: SigningAlgorithm): EcCurve {
  return CURVES[algorithm];
}

export function isSigningAlgorithm(value: unknown): value is SigningAlgorithm {
  return value === 'ES256' || value === 'ES384';
}

/** An uncompressed SEC1 point (0x04 || x || y) as a JWK. */
export function ecPointToJwk(point: Uint8Array, algorithm: SigningAlgorithm, kid: string): EcPublicJwk {
  const curve = curveFor(algorithm);
  if (point.length !== 1 + 2 * curve.size || point[0] !== 0x04) {
    throw new TresorError('KEYSTORE_RESPONSE_INVALID', `not an uncompressed ${curve.crv} point`);
  }
  return {
    kty: 'EC',
    crv: curve.crv,
    x: bytesToBase64Url(point.subarray(1, 1 + curve.size)),
    y: bytesToBase64Url(point.subarray(1 + curve.size)),
    kid,
    alg: algorithm,
    use: 'sig',
  };
}

/** Parses an EC public JWK from untrusted JSON (a key server's answer). */
export function parseEcPublicJwk(json: unknown): EcPublicJwk {
  const bad = (): TresorError =>
    new TresorError('KEYSTORE_RESPONSE_INVALID', 'the public key is not an EC JWK');
  if (typeof json !== 'object' || json === null) throw bad();
  const o = json as Record<string, unknown>;
  if (o.kty !== 'EC' || !isSigningAlgorithm(o.alg) || typeof o.kid !== 'string') throw bad();
  const curve = curveFor(o.alg);
  const coordinate = (v: unknown): v is string =>
    typeof v === 'string' && /^[A-Za-z0-9_-]+$/.test(v) && v.length === Math.ceil((curve.size * 4) / 3);
  if (o.crv !== curve.crv || !coordinate(o.x) || !coordinate(o.y)) throw bad();
  return { kty: 'EC', crv: curve.crv, x: o.x, y: o.y, kid: o.kid, alg: curve.algorithm, use: 'sig' };
}
