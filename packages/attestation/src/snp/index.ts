export { createSnpVerifier, snpVerifier, type SnpVerifier, type SnpVerifierOptions } from './verifier.js';
export { SnpChainCache, type SnpEndorsements } from './endorsements.js';
export type { SnpClaims, SnpTcbClaims, SnpSignerCertificateClaims } from './claims.js';
export {
  MAX_SNP_EVIDENCE_SIZE,
  readAzSnpVtpmEvidence,
  snpReportBytes,
  snpReportFromHclReport,
  type AzSnpVtpmEvidence,
} from './evidence-formats.js';
export { parseSnpReportBytes, SNP_REPORT_SIZE, type SnpReport, type SnpSigningKey } from './report.js';
export { SNP_PRODUCTS, type SnpProduct } from './product.js';
export type { SnpTcb } from './tcb.js';
