import { TresorError } from '@tresor/protocol';
import { bytesToBase64Url, utf8Encode } from '@tresor/crypto';
import type { EcPublicJwk, KeyId, KeyStore } from '@tresor/keystore';
import {
  DOCUMENT_ALGORITHM,
  DOCUMENT_TYPE,
  type SignedDocumentClaims,
  type SignedDocumentKind,
} from './document-kind.js';

/** Signs documents with a P-256 key that never leaves its keystore. */
export interface DocumentSigner {
  /** The `kid` of every JWS it signs: the keystore key id. */
  readonly keyId: string;
  /** The public key clients pin (a JWK with `kid`, `alg` ES256, `use` sig). */
  readonly publicJwk: EcPublicJwk;
  /** ECDSA P-256 / SHA-256 over `message`, as raw r||s (the JWS form, RFC 7518 §3.4). */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/**
 * A document signer backed by a keystore signing key (file, PKCS#11 HSM or KYOK).
 *
 * @throws TresorError KEY_USAGE_INVALID when the key is not an ES256 signing key.
 */
export async function keyStoreDocumentSigner(
  store: Pick<KeyStore, 'sign' | 'publicKey'>,
  keyId: KeyId,
): Promise<DocumentSigner> {
  const publicJwk = await store.publicKey(keyId);
  if (publicJwk.alg !== DOCUMENT_ALGORITHM || publicJwk.crv !== 'P-256') {
    throw new TresorError(
      'KEY_USAGE_INVALID',
      `key ${keyId} is ${publicJwk.alg}; trust documents are signed with an ES256 (P-256) key`,
    );
  }
  return { keyId, publicJwk, sign: (message) => store.sign(keyId, message) };
}

/**
 * Signs `claims` (the common claims plus the kind's body members) as a compact JWS (RFC 7515 §7.1)
 * with the protected header `{"alg":"ES256","kid":…,"typ":…}`. The payload is the JSON text of
 * `claims` as given; verifiers hash exactly these bytes for rollback pins.
 */
export async function signDocument(
  signer: DocumentSigner,
  kind: SignedDocumentKind,
  claims: SignedDocumentClaims & Readonly<Record<string, unknown>>,
): Promise<string> {
  return signCompactJws(signer, DOCUMENT_TYPE[kind], claims);
}

/** Signs `claims` as a compact ES256 JWS of type `typ` (what signDocument does for a document kind). */
export async function signCompactJws(
  signer: DocumentSigner,
  typ: string,
  claims: Readonly<Record<string, unknown>>,
): Promise<string> {
  const header = { alg: DOCUMENT_ALGORITHM, kid: signer.keyId, typ };
  const signingInput = `${encodeJson(header)}.${encodeJson(claims)}`;
  const signature = await signer.sign(utf8Encode(signingInput));
  if (signature.length !== 64) {
    throw new TresorError(
      'INTERNAL_ERROR',
      `the keystore returned a ${signature.length}-byte ES256 signature`,
    );
  }
  return `${signingInput}.${bytesToBase64Url(signature)}`;
}

function encodeJson(value: unknown): string {
  return bytesToBase64Url(utf8Encode(JSON.stringify(value)));
}
