export type {
  AppraisalInput,
  CheckResult,
  Checks,
  TeeKind,
  VerificationResult,
  Verifier,
  VerifyOptions,
} from './types.js';
export { CheckLog } from './check-log.js';
export {
  crlCurrentAt,
  extensionValue,
  isCrlSignedBy,
  isRevokedBy,
  isSignedBy,
  parseCertificates,
  parseCrl,
  sameCertificate,
  validityAt,
  type Certificate,
  type Crl,
  type Validity,
} from './certs.js';
