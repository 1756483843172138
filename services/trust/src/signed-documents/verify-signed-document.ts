/** Moved to @tresor/attestation (documents/) so browsers verify the same way; kept for trust's imports. */
export {
  verifySignedDocument,
  type DocumentPin,
  type VerifiedDocument,
  type VerifySignedDocumentOptions,
} from '@tresor/attestation';
