/** Moved to @tresor/attestation (documents/) so browsers verify the same way; kept for trust's imports. */
export {
  DOCUMENT_ALGORITHM,
  DOCUMENT_TYPE,
  MAX_SIGNED_DOCUMENT_LENGTH,
  SIGNED_DOCUMENT_MEDIA_TYPE,
  type SignedDocumentClaims,
  type SignedDocumentKind,
} from '@tresor/attestation';
