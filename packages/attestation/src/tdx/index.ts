export {
  createTdxVerifier,
  tdxVerifier,
  type TdxEndorsements,
  type TdxVerifier,
  type TdxVerifierOptions,
} from './verifier.js';
export { TdxVerificationCache } from './verification-cache.js';
export {
  MAX_QUOTE_BYTES,
  parseTdxQuote,
  type TdxQuote,
  type TdxQuoteHeader,
  type TdxQuoteLayout,
} from './quote.js';
export { decodeTdAttributes, type TdAttributes, type TdBodyType, type TdReport } from './td-report.js';
export type { QeReport } from './qe-report.js';
export type {
  TdxBodyClaims,
  TdxClaims,
  TdxHeaderClaims,
  TdxLayoutClaims,
  TdxPckClaims,
  TdxQeReportClaims,
  TdxTcbClaims,
  TdxTcbStatusClaim,
} from './claims.js';
export { TCB_STATUSES as TDX_TCB_STATUSES, type TcbStatus as TdxTcbStatus } from './tcb-status.js';
export { intelSgxRootCa } from './intel-root.js';
