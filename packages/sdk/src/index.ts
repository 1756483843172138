/**
 * @tresor/sdk: verifies a Tresor gateway (and every serving replica behind it) against the
 * client's trust policy, then sends OpenAI-style requests end-to-end encrypted (OHTTP) through a
 * fetch-compatible function. Runs in Node 20 and browsers; Node-only helpers (TLS key binding,
 * CA files) are in `@tresor/sdk/node`.
 */
export {
  TRESOR_POLICY_VERSION,
  loadTresorPolicy,
  parseTresorPolicy,
  tresorPolicyJsonSchema,
  tresorPolicySchema,
  type TresorPolicy,
  type TresorPolicyInput,
} from './policy.js';
export {
  VERIFICATION_DOCUMENT_VERSION,
  failedChecks,
  renderVerificationDocument,
  type CheckName,
  type CheckStatus,
  type VerificationCheck,
  type VerificationDocument,
} from './verification-document.js';
export {
  expectedReportData,
  verifyComponentEvidence,
  type ComponentExpectations,
  type ComponentIdentity,
  type ComponentVerification,
} from './component-evidence.js';
export {
  parseAttestationBundle,
  verifyAttestationBundle,
  type BundleExpectations,
  type BundleVerification,
} from './bundle.js';
export { DOCUMENT_KEYS_PATH, pinnedDocumentKeys, verifyTrustDocuments } from './trust-documents.js';
export {
  verifyReceipt,
  type Ed25519Verify,
  type ReceiptExpectations,
  type ReceiptVerifyOptions,
  type VerifiedReceipt,
} from './receipts.js';
export { sseReceiptSplitter, type SseReceiptOptions, type SseReceiptResult } from './sse-receipt.js';
export {
  readStreamedBhttpResponse,
  type StreamedBhttpResponse,
  type StreamedResponseHead,
} from './bhttp-response-stream.js';
export {
  OHTTP_KEYS_PATH,
  OHTTP_PATH,
  connect,
  normaliseGatewayUrl,
  verificationError,
  verifyGateway,
  type ConnectOptions,
  type FetchFunction,
  type GatewayVerification,
  type TlsBinding,
  type TresorClient,
} from './client.js';
