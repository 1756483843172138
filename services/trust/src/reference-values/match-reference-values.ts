/** Moved to @tresor/attestation (documents/) so browsers verify the same way; kept for trust's imports. */
export {
  matchReferenceValues,
  matchesReferenceValueSet,
  requireReleasedWorkload,
  type MeasuredWorkload,
} from '@tresor/attestation';
