export {
  ERROR_CATALOGUE,
  ERROR_CODES,
  TresorError,
  errorSpec,
  isErrorCode,
  isTresorError,
  type ErrorCode,
  type ErrorSpec,
  type TresorErrorOptions,
} from './errors.js';
/** The attestation bundle clients verify, the runtime data bound into evidence, response receipts. */
export {
  ATTESTATION_BUNDLE_PATH,
  ATTESTATION_BUNDLE_VERSION,
  ATTESTATION_NONCE_HEX_LENGTH,
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  SERVING_ATTESTATION_PATH,
  USAGE_REQUEST_HEADER,
  USAGE_SSE_PREFIX,
  type AttestationBundle,
  type AttestedComponent,
  type ComponentEvidence,
  type LoadedModelDigest,
  type ReceiptClaims,
  type RuntimeData,
} from './attestation-bundle.js';
