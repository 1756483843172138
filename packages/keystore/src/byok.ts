import {
  constants,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { TresorError } from '@tresor/protocol';
import { aesKeyUnwrapPad, aesKeyWrapPad } from './aes-key-wrap.js';
import { SecretKeyBytes } from './secret-key-bytes.js';

/**
 * BYOK import (bring your own key): the customer wraps its KEK for the keystore's RSA import key so
 * the plaintext KEK exists only at the customer and inside the keystore (HSM). The layout is PKCS#11
 * v2.40 §2.1.21 CKM_RSA_AES_KEY_WRAP, which AWS KMS (RSA_AES_KEY_WRAP_SHA_256) and Azure Key Vault
 * (CKM_RSA_AES_KEY_WRAP) use:
 *
 *   RSA-OAEP(hash, MGF1-hash, empty label)(ephemeral AES-256 key) || AES-KWP(RFC 5649)(KEK)
 *
 * The first part is exactly the modulus length; a 256-bit KEK wraps to 40 bytes.
 *
 * The OAEP hash is SHA-256 wherever the keystore can do it (AWS: RSA_AES_KEY_WRAP_SHA_256). A PKCS#11
 * token whose OAEP supports only SHA-1 — SoftHSM 2.6 refuses any other hash with CKR_ARGUMENTS_BAD —
 * advertises RSA_AES_KEY_WRAP_SHA_1 instead (AWS offers that variant too), so the unwrap still happens
 * inside the token. OAEP's security rests on the hash as a random oracle, not on collision resistance.
 */
export type ImportWrappingAlgorithm = 'RSA_AES_KEY_WRAP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_1';
export const IMPORT_KEY_BITS = 3072;

/** The OAEP hash (also used for MGF1) of each wrapping algorithm, by node:crypto name. */
export function oaepHashOf(algorithm: ImportWrappingAlgorithm): 'sha256' | 'sha1' {
  return algorithm === 'RSA_AES_KEY_WRAP_SHA_256' ? 'sha256' : 'sha1';
}
const KWP_WRAPPED_KEK_LENGTH = 40;

export interface RsaPublicJwk {
  readonly kty: 'RSA';
  readonly n: string;
  readonly e: string;
  readonly kid: string;
  readonly alg: 'RSA-OAEP-256';
  readonly use: 'enc';
}

/** What `tresor keys import-params` prints: the public half of the keystore's import key. */
export interface ImportParameters {
  /** The layout and OAEP hash the customer must use to wrap its key. */
  readonly wrappingAlgorithm: ImportWrappingAlgorithm;
  /** RFC 7638 thumbprint of the import key. */
  readonly importKeyId: string;
  readonly modulusBits: number;
  /** SubjectPublicKeyInfo, PEM. */
  readonly publicKeyPem: string;
  readonly publicKeyJwk: RsaPublicJwk;
}

/** Builds the import parameters from the RSA public key. */
export async function importParametersFor(
  key: KeyObject,
  wrappingAlgorithm: ImportWrappingAlgorithm,
): Promise<ImportParameters> {
  const jwk = key.export({ format: 'jwk' });
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.e !== 'string' || bits === undefined) {
    throw new TresorError('INTERNAL_ERROR', 'the import key is not an RSA key');
  }
  const kid = await calculateJwkThumbprint({ kty: 'RSA', n: jwk.n, e: jwk.e }, 'sha256');
  return {
    wrappingAlgorithm,
    importKeyId: kid,
    modulusBits: bits,
    publicKeyPem: key.export({ format: 'pem', type: 'spki' }).toString(),
    publicKeyJwk: { kty: 'RSA', n: jwk.n, e: jwk.e, kid, alg: 'RSA-OAEP-256', use: 'enc' },
  };
}

export interface ImportPayloadParts {
  /** RSA-OAEP ciphertext of the ephemeral AES key: exactly the modulus length. */
  readonly wrappedEphemeralKey: Uint8Array;
  /** AES-KWP ciphertext of the KEK: 40 bytes for AES-256. */
  readonly wrappedKek: Uint8Array;
}

/** Splits the payload by length alone, before any cryptography, refusing every other length. */
export function splitImportPayload(payload: Uint8Array, modulusBits: number): ImportPayloadParts {
  const rsaLength = modulusBits / 8;
  if (payload.length !== rsaLength + KWP_WRAPPED_KEK_LENGTH) {
    throw new TresorError(
      'KEY_IMPORT_INVALID',
      `wrapped key material is ${payload.length} bytes; expected ${rsaLength + KWP_WRAPPED_KEK_LENGTH} (RSA-${modulusBits} OAEP block + 40-byte AES-KWP of a 256-bit key)`,
    );
  }
  return {
    wrappedEphemeralKey: payload.subarray(0, rsaLength),
    wrappedKek: payload.subarray(rsaLength),
  };
}

/** The software path (file keystore, KYOK server over a file keystore): unwraps in this process. */
export function unwrapImportPayload(
  privateKey: KeyObject,
  payload: Uint8Array,
  algorithm: ImportWrappingAlgorithm,
): SecretKeyBytes {
  const bits = privateKey.asymmetricKeyDetails?.modulusLength;
  if (bits === undefined) throw new TresorError('INTERNAL_ERROR', 'the import key is not an RSA key');
  const parts = splitImportPayload(payload, bits);
  let ephemeral: Buffer;
  try {
    ephemeral = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHashOf(algorithm) },
      parts.wrappedEphemeralKey,
    );
  } catch (cause) {
    throw new TresorError(
      'KEY_IMPORT_INVALID',
      `the RSA-OAEP block does not decrypt with this keystore's import key (${algorithm})`,
      { cause },
    );
  }
  try {
    if (ephemeral.length !== 32) {
      throw new TresorError('KEY_IMPORT_INVALID', 'the ephemeral wrapping key is not a 256-bit AES key');
    }
    const kek = aesKeyUnwrapPad(ephemeral, parts.wrappedKek, 'KEY_IMPORT_INVALID');
    if (kek.length !== 32) {
      kek.fill(0);
      throw new TresorError('KEY_IMPORT_INVALID', 'the imported key is not a 256-bit AES key');
    }
    return SecretKeyBytes.takeFrom(kek);
  } finally {
    ephemeral.fill(0);
  }
}

/**
 * The customer side, for scripts and tests in Node: wraps `kek` for `params`. The openssl recipe in
 * docs/keys.md does the same with independent code.
 */
export function wrapKeyForImport(params: ImportParameters, kek: SecretKeyBytes): Uint8Array {
  const publicKey = createPublicKey(params.publicKeyPem);
  const ephemeral = randomBytes(32);
  try {
    const wrappedEphemeralKey = publicEncrypt(
      {
        key: publicKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: oaepHashOf(params.wrappingAlgorithm),
      },
      ephemeral,
    );
    const wrappedKek = kek.expose((k) => aesKeyWrapPad(ephemeral, k));
    const out = new Uint8Array(wrappedEphemeralKey.length + wrappedKek.length);
    out.set(wrappedEphemeralKey, 0);
    out.set(wrappedKek, wrappedEphemeralKey.length);
    return out;
  } finally {
    ephemeral.fill(0);
  }
}

/** Parses import parameters from untrusted JSON (a key server's answer), rebuilding them from the key. */
export async function parseImportParameters(json: unknown): Promise<ImportParameters> {
  const bad = (detail: string): TresorError =>
    new TresorError('KEYSTORE_RESPONSE_INVALID', `import parameters: ${detail}`);
  if (typeof json !== 'object' || json === null) throw bad('not an object');
  const o = json as Record<string, unknown>;
  const algorithm = o.wrappingAlgorithm;
  if (algorithm !== 'RSA_AES_KEY_WRAP_SHA_256' && algorithm !== 'RSA_AES_KEY_WRAP_SHA_1')
    throw bad('unknown wrapping algorithm');
  if (typeof o.publicKeyPem !== 'string') throw bad('publicKeyPem missing');
  let key: KeyObject;
  try {
    key = createPublicKey(o.publicKeyPem);
  } catch (cause) {
    throw new TresorError(
      'KEYSTORE_RESPONSE_INVALID',
      'import parameters: publicKeyPem is not a public key',
      { cause },
    );
  }
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw bad('the import key is not an RSA key of at least 2048 bits');
  }
  const params = await importParametersFor(key, algorithm);
  if (o.importKeyId !== params.importKeyId) throw bad('importKeyId does not match the key');
  return params;
}
