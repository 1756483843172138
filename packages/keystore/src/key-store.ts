import type { KeyId } from './key-id.js';
import type { SecretKeyBytes } from './secret-key-bytes.js';
import type { WrappedKey } from './wrapped-key.js';
import type { ImportParameters } from './byok.js';

/** Where the keys live: a local sealed file, a PKCS#11 HSM (BYOK), or the customer's own key server (KYOK). */
export type KeyStoreBackend = 'file' | 'pkcs11' | 'kyok';

/** A key-encryption key (AES-256, wraps data keys) or a signing key (EC P-256 / P-384). */
export type KeyKind = 'kek' | 'signing';

/**
 * `A256KW`: AES-256 key wrap (RFC 3394), the name RFC 7518 §4.4 gives it; used for data keys.
 * `ES256` / `ES384`: ECDSA on P-256 / P-384 with SHA-256 / SHA-384, signatures as raw r||s (RFC 7518 §3.4).
 */
export type KekAlgorithm = 'A256KW';
export type SigningAlgorithm = 'ES256' | 'ES384';
export type KeyAlgorithm = KekAlgorithm | SigningAlgorithm;

/** `destroyed` keys keep a tombstone so their id is never reused and callers learn why data is gone. */
export type KeyState = 'enabled' | 'disabled' | 'destroyed';

/** `imported`: brought in wrapped by the customer (BYOK); the plaintext never existed in Tresor. */
export type KeyOrigin = 'generated' | 'imported';

/** What `list` and `describe` return: metadata only, never key material. */
export interface KeyMetadata {
  readonly id: KeyId;
  readonly kind: KeyKind;
  readonly algorithm: KeyAlgorithm;
  readonly state: KeyState;
  readonly origin: KeyOrigin;
  /** ISO 8601 UTC. Keys made outside Tresor (e.g. by HSM tools) report the epoch. */
  readonly created: string;
  /** Free text for people (e.g. the tenant), not secret. Empty when none was given. */
  readonly label: string;
}

export interface CreateKeyOptions {
  readonly label?: string;
}

/** An EC public key as a JWK (RFC 7517), with `kid` = key id and `alg` = ES256 | ES384. */
export interface EcPublicJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256' | 'P-384';
  readonly x: string;
  readonly y: string;
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly use: 'sig';
}

/**
 * Customer-owned keys behind one interface; every backend runs the same conformance suite
 * (src/conformance). Every failure is a TresorError with a catalogue code: KEY_NOT_FOUND,
 * KEY_DISABLED, KEY_DESTROYED, KEY_USAGE_INVALID, KEY_UNWRAP_FAILED, KEY_REVOKED (kyok), …
 */
export interface KeyStore {
  readonly backend: KeyStoreBackend;

  /** A new AES-256 key-encryption key, generated inside the keystore and never exported. */
  createKek(options?: CreateKeyOptions): Promise<KeyMetadata>;
  /** A new EC signing key pair; the private key never leaves the keystore. */
  createSigningKey(algorithm: SigningAlgorithm, options?: CreateKeyOptions): Promise<KeyMetadata>;

  /** The public key a customer wraps a KEK for (BYOK); created on first use. */
  importParameters(): Promise<ImportParameters>;
  /**
   * Imports a customer KEK wrapped as RSA-OAEP-SHA256(ephemeral AES key) || AES-KWP(KEK) — the
   * CKM_RSA_AES_KEY_WRAP layout AWS KMS and Azure Key Vault use. Refuses with KEY_IMPORT_INVALID.
   */
  importKek(wrappedKeyMaterial: Uint8Array, options?: CreateKeyOptions): Promise<KeyMetadata>;

  /** Wraps a 256-bit data key under the KEK (A256KW). */
  wrapKey(kekId: KeyId, dataKey: SecretKeyBytes): Promise<WrappedKey>;
  /** Unwraps a data key; the caller disposes the result. */
  unwrapKey(wrapped: WrappedKey): Promise<SecretKeyBytes>;

  /** Signs `message` (hashed with the algorithm's SHA-2); returns raw r||s. */
  sign(keyId: KeyId, message: Uint8Array): Promise<Uint8Array>;
  publicKey(keyId: KeyId): Promise<EcPublicJwk>;

  describe(keyId: KeyId): Promise<KeyMetadata>;
  list(): Promise<readonly KeyMetadata[]>;
  disable(keyId: KeyId): Promise<KeyMetadata>;
  enable(keyId: KeyId): Promise<KeyMetadata>;
  /** Destroys the key material for good (crypto-shredding); a tombstone stays. */
  destroy(keyId: KeyId): Promise<KeyMetadata>;

  /** Releases sessions and zeroes cached key material. */
  close(): Promise<void>;
}
