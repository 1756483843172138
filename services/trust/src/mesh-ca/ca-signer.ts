import 'reflect-metadata';
import { createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { TresorError } from '@tresor/protocol';
import { toArrayBuffer } from '@tresor/crypto';
import type { EcPublicJwk, KeyId, KeyStore } from '@tresor/keystore';

x509.cryptoProvider.set(globalThis.crypto);

/** The mesh CA's signing key: an EC key whose private half never leaves its keystore. */
export interface CaSigner {
  readonly keyId: string;
  readonly publicJwk: EcPublicJwk;
  /** ECDSA over `message` with the key's hash, as raw r||s (the WebCrypto form). */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** A CA signer backed by a keystore signing key (ES256 or ES384). */
export async function keyStoreCaSigner(
  store: Pick<KeyStore, 'sign' | 'publicKey'>,
  keyId: KeyId,
): Promise<CaSigner> {
  const publicJwk = await store.publicKey(keyId);
  return { keyId, publicJwk, sign: (message) => store.sign(keyId, message) };
}

/** What @peculiar/x509 needs to sign a TBSCertificate with the CA key. */
export interface CaSigning {
  /** The SubjectPublicKeyInfo (DER) of the CA key. */
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly signingAlgorithm: EcdsaParams;
  /** A stand-in CryptoKey that only describes the algorithm; it holds no key material. */
  readonly signingKey: CryptoKey;
  /** WebCrypto, with `subtle.sign` answered by the CA signer instead. */
  readonly crypto: Crypto;
}

/**
 * Lets @peculiar/x509's certificate generator sign with a key it never sees: the generator signs
 * the DER TBSCertificate through the `crypto` it is given (`crypto.subtle.sign(algorithm, key,
 * tbs)`), so this hands it a WebCrypto whose `sign` goes to the keystore and whose other
 * operations are the platform's. The keystore's ECDSA output is raw r||s, exactly what WebCrypto's
 * `sign` returns, so the generator's DER encoding of the signature (RFC 5480 §2.2.3) applies as is.
 */
export function caSigning(signer: CaSigner): CaSigning {
  const { crv } = signer.publicJwk;
  const hash = crv === 'P-384' ? 'SHA-384' : 'SHA-256';
  let spki: Uint8Array;
  try {
    spki = new Uint8Array(
      createPublicKey({ key: { ...signer.publicJwk }, format: 'jwk' }).export({
        type: 'spki',
        format: 'der',
      }),
    );
  } catch (cause) {
    throw new TresorError('KEY_USAGE_INVALID', `key ${signer.keyId} is not an EC public key`, { cause });
  }
  const platform = globalThis.crypto;
  const sign = async (_algorithm: unknown, _key: unknown, data: BufferSource): Promise<ArrayBuffer> =>
    toArrayBuffer(await signer.sign(bufferSourceBytes(data)));
  const subtle = new Proxy(platform.subtle, {
    get(target, property) {
      if (property === 'sign') return sign;
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  const crypto = new Proxy(platform, {
    get(target, property) {
      if (property === 'subtle') return subtle;
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  const signingKey: CryptoKey = {
    algorithm: { name: 'ECDSA', namedCurve: crv } as EcKeyAlgorithm,
    extractable: false,
    type: 'private',
    usages: ['sign'],
  };
  return { subjectPublicKeyInfo: spki, signingAlgorithm: { name: 'ECDSA', hash }, signingKey, crypto };
}

function bufferSourceBytes(data: BufferSource): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
