/** Moved to @tresor/attestation (documents/) so browsers verify the same way; kept for trust's imports. */
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
} from '@tresor/attestation';
