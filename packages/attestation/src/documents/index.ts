/**
 * The trust service's signed documents, verification side: parsing, ES256 signature checks with
 * pinned keys, reference-value matching and the residency check. Browser-safe (WebCrypto, jose,
 * zod), so clients verify exactly as the trust service does.
 */
export {
  DOCUMENT_ALGORITHM,
  DOCUMENT_TYPE,
  MAX_SIGNED_DOCUMENT_LENGTH,
  SIGNED_DOCUMENT_MEDIA_TYPE,
  type SignedDocumentClaims,
  type SignedDocumentKind,
} from './document-kind.js';
export { schemaProblem } from './schema-problem.js';
export {
  verifySignedDocument,
  type DocumentPin,
  type VerifiedDocument,
  type VerifySignedDocumentOptions,
} from './verify-signed-document.js';
export {
  COMPONENT_PATTERN,
  MAX_REFERENCE_VALUE_SETS,
  RELEASE_PATTERN,
  compareKeys,
  parseReferenceValueKey,
  parseReferenceValueSet,
  referenceValueKeySchema,
  referenceValueSetSchema,
  sameKey,
  type ReferenceValueKey,
  type ReferenceValueSet,
} from './reference-value-set.js';
export {
  matchReferenceValues,
  matchesReferenceValueSet,
  requireReleasedWorkload,
  type MeasuredWorkload,
} from './match-reference-values.js';
export {
  parseReferenceValues,
  verifyReferenceValuesDocument,
  type ReferenceValues,
  type VerifiedReferenceValues,
} from './reference-values-document.js';
export {
  HARDWARE_KINDS,
  JURISDICTION_PATTERN,
  MAX_INVENTORY_ENTRIES,
  hardwareEntrySchema,
  parseHardwareEntries,
  parseHardwareIds,
  parseResidencyInventory,
  sortHardwareEntries,
  verifyResidencyInventoryDocument,
  type HardwareEntry,
  type HardwareKind,
  type ResidencyInventory,
  type VerifiedResidencyInventory,
} from './residency-inventory.js';
export {
  DEFAULT_JURISDICTION,
  requireResident,
  residencyIds,
  residentHardwareIds,
  sampleMachineId,
  type ResidencyFinding,
} from './residency-check.js';
