import { ECDH, createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { base64ToBytes, bytesToBase64Url } from '@tresor/crypto';

/**
 * The TEE's ephemeral public key from `runtime-data.tee-pubkey` (kbs-types `TeePubKey`, tagged by
 * `kty`). It is what the secret is wrapped to, so it is checked before anything is bound to it:
 *
 * - EC: P-256 (guest-components' default), P-384 or P-521, `alg` "ECDH-ES+A256KW", and a point on the
 *   curve (OpenSSL's import refuses anything else: the invalid-curve attack on ECDH-ES, RFC 7518 §8.8);
 * - RSA: `alg` "RSA-OAEP-256", a modulus of at least 2048 bits. "RSA1_5" (PKCS#1 v1.5, which Trustee
 *   still accepts but deprecates) is refused: its padding oracle (Bleichenbacher 1998) is exactly the
 *   risk a key broker must not run.
 *
 * The key is normalised to the members Trustee keeps (serde drops the rest before hashing), so the
 * report-data binding uses exactly what Trustee and guest-components hash.
 */

export type TeePublicKeyJwk =
  | {
      readonly kty: 'EC';
      readonly crv: 'P-256' | 'P-384' | 'P-521';
      readonly alg: 'ECDH-ES+A256KW';
      readonly x: string;
      readonly y: string;
    }
  | { readonly kty: 'RSA'; readonly alg: 'RSA-OAEP-256'; readonly n: string; readonly e: string };

export interface TeePublicKey {
  readonly jwk: TeePublicKeyJwk;
  /**
   * EC keys: the point, uncompressed (SEC 1 §2.3.3), checked to be on its curve, for ECDH with
   * `node:crypto`'s ECDH object (raw points: no KeyObject or JWK conversion per release).
   */
  readonly point?: Uint8Array;
  /** RSA keys: the imported key, for RSA-OAEP encryption with `node:crypto`. */
  readonly key?: KeyObject;
}

/** OpenSSL's names of the curves a tee-pubkey may be on. */
export const OPENSSL_CURVE = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' } as const;

const CURVE_BYTES = { 'P-256': 32, 'P-384': 48, 'P-521': 66 } as const;
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function invalid(why: string): TresorError {
  return new TresorError('TEE_PUBLIC_KEY_INVALID', `the tee-pubkey ${why}`);
}

/** Decodes a base64url JWK member in its canonical unpadded form only (RFC 7518 §6.2.1.2, §6.3.1.1). */
function member(value: unknown, name: string, maxLength: number): Uint8Array {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength || !BASE64URL.test(value)) {
    throw invalid(`member "${name}" is not base64url`);
  }
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(value);
  } catch {
    // A length of 4k + 1 characters encodes no whole number of bytes (RFC 4648 §5).
    throw invalid(`member "${name}" is not base64url`);
  }
  if (bytesToBase64Url(bytes) !== value) throw invalid(`member "${name}" is not canonical base64url`);
  return bytes;
}

function ecKey(value: Readonly<Record<string, unknown>>): TeePublicKeyJwk {
  const { crv, alg, x, y } = value;
  if (crv !== 'P-256' && crv !== 'P-384' && crv !== 'P-521') {
    throw invalid(`curve ${JSON.stringify(crv)} is not P-256, P-384 or P-521`);
  }
  if (alg !== 'ECDH-ES+A256KW')
    throw invalid(`alg ${JSON.stringify(alg)} is not ECDH-ES+A256KW for an EC key`);
  const size = CURVE_BYTES[crv];
  for (const [name, coordinate] of [
    ['x', x],
    ['y', y],
  ] as const) {
    if (member(coordinate, name, 128).length !== size) throw invalid(`member "${name}" is not ${size} bytes`);
  }
  return { kty: 'EC', crv, alg, x: x as string, y: y as string };
}

function rsaKey(value: Readonly<Record<string, unknown>>): TeePublicKeyJwk {
  const { alg, n, e } = value;
  if (alg === 'RSA1_5') throw invalid('alg RSA1_5 (PKCS#1 v1.5) is refused; use RSA-OAEP-256');
  if (alg !== 'RSA-OAEP-256') throw invalid(`alg ${JSON.stringify(alg)} is not RSA-OAEP-256 for an RSA key`);
  const modulus = member(n, 'n', 2048);
  if (modulus[0] === 0) throw invalid('modulus has a leading zero byte');
  const bits = modulus.length * 8 - Math.clz32(modulus[0]!) + 24;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw invalid(`modulus is ${bits} bits; ${MIN_RSA_BITS} to ${MAX_RSA_BITS} are accepted`);
  }
  const exponent = member(e, 'e', 8);
  if (exponent.length > 4 || (exponent.at(-1)! & 1) === 0 || (exponent.length === 1 && exponent[0]! < 3)) {
    throw invalid('public exponent is not an odd number of at most 32 bits');
  }
  return { kty: 'RSA', alg, n: n as string, e: e as string };
}

function importKey(jwk: TeePublicKeyJwk): Pick<TeePublicKey, 'point' | 'key'> {
  if (jwk.kty === 'EC') {
    const point = Buffer.concat([
      Buffer.from([0x04]),
      Buffer.from(jwk.x, 'base64url'),
      Buffer.from(jwk.y, 'base64url'),
    ]);
    try {
      // OpenSSL decodes the point (EC_POINT_oct2point), which refuses one off the curve.
      ECDH.convertKey(point, OPENSSL_CURVE[jwk.crv], undefined, undefined, 'uncompressed');
    } catch {
      throw invalid('is not a point on its curve');
    }
    return { point: new Uint8Array(point) };
  }
  try {
    return { key: createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' }) };
  } catch {
    throw invalid('is not a usable RSA public key');
  }
}

/**
 * Checks and imports a tee-pubkey from untrusted JSON.
 *
 * @throws TresorError TEE_PUBLIC_KEY_INVALID
 */
export function parseTeePublicKey(value: Readonly<Record<string, unknown>>): TeePublicKey {
  // The type says object, but the value comes straight from untrusted JSON.
  if (typeof value !== 'object' || (value as unknown) === null || Array.isArray(value)) {
    throw invalid('is not a JSON object');
  }
  if (PRIVATE_MEMBERS.some((name) => Object.prototype.hasOwnProperty.call(value, name))) {
    throw invalid('carries private key members; send the public key only');
  }
  let jwk: TeePublicKeyJwk;
  if (value.kty === 'EC') jwk = ecKey(value);
  else if (value.kty === 'RSA') jwk = rsaKey(value);
  else throw invalid(`kty ${JSON.stringify(value.kty)} is not EC or RSA`);
  return { jwk, ...importKey(jwk) };
}

/**
 * The RFC 7638 thumbprint of a checked tee-pubkey: SHA-256 over the JSON of the required members
 * only, in lexicographic order and without whitespace (§3.2), base64url-encoded. The members were
 * checked to be base64url text and a known curve name, so JSON.stringify writes them exactly as
 * §3.3 asks (no escaping is ever needed).
 */
export function teePublicKeyThumbprint(jwk: TeePublicKeyJwk): string {
  const required =
    jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash('sha256').update(JSON.stringify(required)).digest('base64url');
}
