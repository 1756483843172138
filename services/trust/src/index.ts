/**
 * The trust service: a Trustee-compatible key broker (KBS protocol) and attestation service issuing
 * EAR tokens, with Cedar resource policies over envelope-encrypted resources; plugins add the
 * reference values, residency inventory, mesh CA and signed admin API.
 */
export { buildTrustApp, JWKS_PATH, type TrustApp, type TrustDependencies } from './app.js';
export {
  loadTrustConfigFile,
  parseTrustConfig,
  trustConfigSchema,
  type TrustConfig,
  type TrustConfigInput,
} from './config.js';
export type {
  AuditSink,
  AuthenticatedWorkload,
  SessionAttestation,
  TrustContext,
  TrustPlugin,
} from './context.js';

/** Key broker: the KBS protocol. */
export {
  ADDITIONAL_TEES,
  DEFAULT_SESSION_TTL_SECONDS,
  KBS_ERROR_TYPE_PREFIX,
  KBS_PREFIX,
  KBS_PROTOCOL_VERSION,
  KBS_SESSION_COOKIE,
  KBS_TEE_NAMES,
  PRIMARY_TEES,
  type AdditionalTee,
  type KbsTeeName,
  type PrimaryTee,
} from './kbs/protocol.js';
export { requireProtocolVersion } from './kbs/protocol-version.js';
export {
  parseKbsAttestation,
  parseKbsRequest,
  type KbsAttestation,
  type KbsChallenge,
  type KbsRequest,
} from './kbs/messages.js';
export { parseTeePublicKey, type TeePublicKey, type TeePublicKeyJwk } from './kbs/tee-public-key.js';
export {
  additionalDeviceNonce,
  expectedReportData,
  primaryRuntimeData,
  type BoundRuntimeData,
} from './kbs/runtime-data.js';
export { encryptForTee, type FlattenedJwe } from './kbs/jwe.js';
export { kbsErrorShaper, kbsErrorVariant, type KbsErrorVariant } from './kbs/kbs-errors.js';
export { SessionStore, type KbsSession, type SessionStoreOptions } from './kbs/sessions.js';
export { KbsClient, resourceRequestPath, type KbsClientOptions } from './kbs/client.js';
export {
  sampleAttester,
  type EvidenceRequest,
  type KbsAttester,
  type SampleAttesterOptions,
} from './kbs/attester.js';
export {
  httpsTransport,
  type HttpsTransportOptions,
  type KbsTransport,
  type TransportResponse,
} from './kbs/client-transport.js';
export {
  MESH_KEY_ALGORITHM,
  meshCertificationRequest,
  requestMeshCertificate,
  type MeshCertificate,
} from './kbs/mesh-certificate-client.js';

/** Attestation service: appraisal and EAR tokens. */
export {
  AttestationService,
  type AttestationOutcome,
  type AttestationRequest,
  type AttestationServiceOptions,
  type ReferenceValueLookup,
  type ResidencyLookup,
} from './attestation-service/attestation-service.js';
export type { AttestedGpu, AttestedIdentity } from './attestation-service/attested-identity.js';
export { earTokenClaims, identityFromClaims } from './attestation-service/ear-token-claims.js';
export {
  AttestationTokenService,
  MAX_TOKEN_LENGTH,
  type IssuedToken,
} from './attestation-service/token-service.js';
export {
  generateTokenSigner,
  keyStoreTokenSigner,
  type TokenSigner,
} from './attestation-service/token-signer.js';
export type { EndorsementProvider } from './attestation-service/tee-evidence.js';
export { verifyInitData, type VerifiedInitData } from './attestation-service/init-data.js';
export { parseInitDataToml, type InitDataDocument } from './attestation-service/initdata-toml.js';

/** Resource policy (Cedar) and resources. */
export { CedarResourcePolicy, type ResourceDecision } from './resource-policy/resource-policy.js';
export { RESOURCE_POLICY_SCHEMA } from './resource-policy/cedar-schema.js';
export { parseResourcePath, resourcePath, type ResourcePath } from './resources/resource-path.js';
export { MAX_RESOURCE_BYTES, ResourceStore } from './resources/resource-store.js';
export {
  FileResourceRepository,
  MemoryResourceRepository,
  type ResourceRepository,
} from './resources/resource-repository.js';

/** Signed trust documents: reference values and residency inventory, as the trust service publishes them. */
export {
  DOCUMENT_TYPE,
  SIGNED_DOCUMENT_MEDIA_TYPE,
  type SignedDocumentClaims,
  type SignedDocumentKind,
} from './signed-documents/document-kind.js';
export {
  keyStoreDocumentSigner,
  signDocument,
  type DocumentSigner,
} from './signed-documents/document-signer.js';
export { ephemeralDocumentSigner } from './signed-documents/ephemeral-signer.js';
export {
  FileDocumentRepository,
  MemoryDocumentRepository,
  type DocumentRepository,
} from './signed-documents/document-repository.js';
export {
  SignedDocumentPublisher,
  type BeforePublish,
  type DocumentBodyCodec,
  type PublishedDocument,
} from './signed-documents/signed-document-publisher.js';
export {
  verifySignedDocument,
  type DocumentPin,
  type VerifiedDocument,
  type VerifySignedDocumentOptions,
} from './signed-documents/verify-signed-document.js';
export {
  DOCUMENT_PREFIX,
  DOCUMENT_VERSION_HEADER,
  documentRoutes,
} from './signed-documents/document-routes.js';
export { documentPlugin } from './signed-documents/document-plugin.js';

/** Reference values: which releases of which components may run. */
export {
  parseReferenceValueKey,
  parseReferenceValueSet,
  type ReferenceValueKey,
  type ReferenceValueSet,
} from './reference-values/reference-value-set.js';
export {
  matchReferenceValues,
  matchesReferenceValueSet,
  requireReleasedWorkload,
  type MeasuredWorkload,
} from './reference-values/match-reference-values.js';
export {
  verifyReferenceValuesDocument,
  type ReferenceValues,
  type VerifiedReferenceValues,
} from './reference-values/reference-values-document.js';
export { ReferenceValueStore } from './reference-values/reference-value-store.js';

/** Residency inventory: which hardware may process data, and where it stands. */
export {
  HARDWARE_KINDS,
  parseHardwareEntries,
  verifyResidencyInventoryDocument,
  type HardwareEntry,
  type HardwareKind,
  type ResidencyInventory,
  type VerifiedResidencyInventory,
} from './inventory/residency-inventory.js';
export {
  DEFAULT_JURISDICTION,
  requireResident,
  residencyIds,
  residentHardwareIds,
  sampleMachineId,
  type ResidencyFinding,
} from './inventory/residency-check.js';
export { InventoryStore, type InventoryStoreOptions } from './inventory/inventory-store.js';

/** Mesh CA: short-lived certificates for gateway↔serving mTLS, for attested keys only. */
export {
  DEFAULT_TRUST_DOMAIN,
  meshSpiffeId,
  parseMeshSpiffeId,
  type MeshIdentity,
} from './mesh-ca/spiffe-id.js';
export type { AttestedWorkload } from './mesh-ca/attested-workload.js';
export { keyStoreCaSigner, type CaSigner } from './mesh-ca/ca-signer.js';
export {
  MeshCa,
  type CertificateRequest,
  type IssuedCertificate,
  type MeshCaOptions,
  type MeshCaPolicy,
} from './mesh-ca/mesh-ca.js';
export { MESH_PREFIX, PEM_CHAIN_MEDIA_TYPE, meshRoutes } from './mesh-ca/mesh-routes.js';
export { meshCaPlugin } from './mesh-ca/mesh-plugin.js';

/** Signed admin API. */
export { AdminKeySet, type AdminAlgorithm, type AdminKey } from './admin/admin-keys.js';
export {
  ADMIN_MEDIA_TYPE,
  ADMIN_REQUEST_TYPE,
  verifyAdminRequest,
  type VerifiedAdminRequest,
} from './admin/admin-request.js';
export {
  exportAdminKey,
  generateAdminKey,
  importAdminKey,
  signAdminRequest,
  type AdminRequestOptions,
  type AdminSigningKey,
} from './admin/admin-request-signer.js';
export { ADMIN_PREFIX, adminRoutes, type AdminRoutesOptions } from './admin/admin-routes.js';
export { adminPlugin, type AdminPluginOptions } from './admin/admin-plugin.js';
export type { AdminOperation } from './admin/admin-operation.js';
export {
  ADMIN_REPLAY_SCOPE,
  DatabaseReplayGuard,
  ReplayGuard,
  type AdminReplayGuard,
} from './admin/replay-guard.js';
export {
  ATTESTATION_POLICY_TYPE,
  attestationPolicyOperations,
  checkAttestationPolicy,
  productionPolicyProblems,
} from './policies/attestation-policy.js';
export {
  SignedPolicyFile,
  type SignedPolicyFileOptions,
  type StoredPolicy,
} from './policies/signed-policy-file.js';

/** Deployment: `tresor trust serve --config <file>`. */
export {
  loadDeploymentConfig,
  parseDeploymentConfig,
  type DeploymentConfig,
} from './deployment/deployment-config.js';
export {
  startTrustService,
  trustPlugins,
  type RunningTrustService,
  type StartTrustServiceOptions,
  type TrustPluginParts,
} from './deployment/start-trust-service.js';
export { trustOpenApi } from './openapi/trust-openapi.js';
export { OPENAPI_PATH, openApiPlugin } from './openapi/openapi-plugin.js';
