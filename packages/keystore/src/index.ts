export type {
  CreateKeyOptions,
  EcPublicJwk,
  KekAlgorithm,
  KeyAlgorithm,
  KeyKind,
  KeyMetadata,
  KeyOrigin,
  KeyState,
  KeyStore,
  KeyStoreBackend,
  SigningAlgorithm,
} from './key-store.js';
export { isKeyId, parseKeyId, type KeyId } from './key-id.js';
export { SecretKeyBytes } from './secret-key-bytes.js';
export {
  WRAPPED_DATA_KEY_LENGTH,
  parseWrappedKey,
  serializeWrappedKey,
  type WrappedKey,
} from './wrapped-key.js';
export { aesKeyUnwrap, aesKeyUnwrapPad, aesKeyWrap, aesKeyWrapPad } from './aes-key-wrap.js';
export {
  IMPORT_KEY_BITS,
  wrapKeyForImport,
  type ImportParameters,
  type ImportWrappingAlgorithm,
  type RsaPublicJwk,
} from './byok.js';
export { EnvelopeCipher, type FieldCipher } from './envelope.js';
export { FileKeyStore, type DeploymentMode, type FileKeyStoreOptions } from './file/file-key-store.js';
export { Pkcs11KeyStore, type Pkcs11KeyStoreOptions } from './pkcs11/pkcs11-key-store.js';
export {
  KyokKeyStore,
  MAX_UNWRAP_CACHE_TTL_MS,
  type KyokClientTls,
  type KyokKeyStoreOptions,
} from './kyok/kyok-key-store.js';
export { parseTenantId, type TenantId } from './kyok/tenant-id.js';
export { RevocationList } from './kyok/revocations.js';
export { loadKyokServerConfig, parseKyokServerConfig, type KyokServerConfig } from './kyok/server-config.js';
export { serveKyok, type KyokServeContext, type ServingKyok } from './kyok/serve.js';
export type { RunningKyokServer } from './kyok/server.js';
export type { RevocationStatus } from './kyok/wire.js';
export {
  loadKeyStoreConfig,
  openKeyStore,
  parseKeyStoreConfig,
  type KeyStoreConfig,
  type OpenKeyStoreContext,
} from './config.js';
export {
  EAR_TRUST_STATUS,
  TRESOR_MEASUREMENTS_CLAIM,
  TRESOR_RESIDENCY_CLAIM,
  TRESOR_TEE_CLAIM,
  TRESOR_TENANT_CLAIM,
  attestationTokenVerifier,
  type AttestationResult,
  type AttestationTokenVerifier,
  type AttestedSubmodule,
  type EarStatus,
  type TokenVerifierOptions,
} from './kyok/attestation-token.js';
export {
  appraiseKeyRelease,
  parseKeyReleasePolicy,
  type KeyReleasePolicy,
  type TenantPolicy,
} from './kyok/release-policy.js';
export { writeFileAtomic } from './atomic-file.js';
