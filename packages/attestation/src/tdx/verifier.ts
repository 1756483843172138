import { CheckLog } from '../check-log.js';
import { webCryptoSignatureVerifier, type SignatureVerifier } from '../signatures/index.js';
import type { VerificationResult, Verifier, VerifyOptions } from '../types.js';
import { tdxAppraisalInput } from './appraisal-input.js';
import { quoteClaims, type TdxClaims, type TdxTcbClaims } from './claims.js';
import { recordCollateralChecks } from './collateral-checks.js';
import { verifyP256 } from './ecdsa-p256.js';
import { intelSgxRootCa } from './intel-root.js';
import { recordQuoteChecks } from './quote-checks.js';
import { parseTdxQuote, type TdxQuote } from './quote.js';
import { TdxVerificationCache } from './verification-cache.js';

/** What a TDX quote is verified against; both optional. */
export interface TdxEndorsements {
  /**
   * Intel DCAP collateral for the quote's FMSPC as dcap-qvl serialises it (see collateral.ts).
   * Without it only the quote, QE report and PCK chain are checked and no TCB status is known.
   */
  readonly collateral?: Uint8Array;
  /** The Intel SGX Root CA (PEM or DER). Optional: the root is pinned; a different one is refused. */
  readonly intelRootCa?: Uint8Array;
}

export interface TdxVerifierOptions {
  /**
   * Where examined PCK chains, collateral and keys are kept between calls. Default: a private
   * 64-entry cache. `null` disables caching, so every call does all the work again.
   */
  readonly cache?: TdxVerificationCache | null;
  /**
   * Checks every signature (quote, QE report, chains, collateral, CRLs). Default: WebCrypto, which
   * runs in browsers; servers pass `nodeSignatureVerifier` from `@tresor/attestation/node`.
   */
  readonly signatures?: SignatureVerifier;
}

/** A `Verifier` whose results carry typed TDX claims. */
export interface TdxVerifier extends Verifier<TdxQuote, TdxEndorsements> {
  verify(
    quote: TdxQuote,
    endorsements: TdxEndorsements,
    options: VerifyOptions,
  ): Promise<VerificationResult<TdxClaims>>;
}

/**
 * The Intel TDX verifier. `parse` accepts a v4 or v5 quote, raw or as hex text. `verify` records,
 * in order: quote_signature, qe_report_signature_by_pck, qe_report_data_binds_attestation_key,
 * pck_chain_signatures, pck_chain_anchored_to_intel_root, pck_chain_valid_at_time, td_not_debug,
 * then with collateral tcb_info_chain, tcb_info_signature, qe_identity_chain,
 * qe_identity_signature, tcb_info_current, qe_identity_current, root_crl_signature,
 * pck_crl_signature, crls_current, pck_not_revoked, pck_ca_not_revoked and tcb_level_found. It
 * throws only for an endorsement file that is not in its format (INPUT_MALFORMED).
 */
export function createTdxVerifier(options: TdxVerifierOptions = {}): TdxVerifier {
  const configured = options.cache === undefined ? new TdxVerificationCache() : options.cache;
  const signatures = options.signatures ?? webCryptoSignatureVerifier;
  return {
    tee: 'tdx',
    parse: parseTdxQuote,
    verify: (quote, endorsements, { now }) =>
      verifyTdxQuote(quote, endorsements, now, configured ?? new TdxVerificationCache(0), signatures),
  };
}

/** The default verifier, with its own cache. */
export const tdxVerifier: TdxVerifier = createTdxVerifier();

async function verifyTdxQuote(
  quote: TdxQuote,
  endorsements: TdxEndorsements,
  now: Date,
  cache: TdxVerificationCache,
  signatures: SignatureVerifier,
): Promise<VerificationResult<TdxClaims>> {
  const root = intelSgxRootCa();
  // Endorsement files are read first so a malformed one fails before any work is spent.
  const suppliedRootIsPinned =
    endorsements.intelRootCa === undefined || cache.isPinnedRoot(endorsements.intelRootCa);
  const collateralWork =
    endorsements.collateral === undefined
      ? undefined
      : cache.collateral(endorsements.collateral, root, signatures);

  // The two quote signatures, the chain and the collateral are independent: run them together.
  const chainWork = cache.pckChain(quote.pckChainPem, root, signatures);
  const [quoteSignatureValid, qeReportSignatureValid, chain, examination] = await Promise.all([
    cache
      .attestationKey(quote.attestationKey, signatures)
      .then(
        (key) => key !== undefined && verifyP256(key, quote.quoteSignature, quote.signedRegion, signatures),
      ),
    chainWork.then((c) => c.readable && c.qeReportSignedByPck(quote.qeReport.raw, quote.qeReportSignature)),
    chainWork,
    collateralWork,
  ]);

  const log = new CheckLog();
  recordQuoteChecks(log, {
    quote,
    chain,
    quoteSignatureValid,
    qeReportSignatureValid,
    attestationKeyBound: cache.attestationKeyBound(quote),
    suppliedRootIsPinned,
    root,
    now,
  });
  let tcb: TdxTcbClaims | undefined;
  if (examination !== undefined) {
    tcb = await recordCollateralChecks(log, { examination, quote, chain, root, now });
  }

  const sgx = chain.readable ? chain.sgx : undefined;
  const claims: TdxClaims = {
    ...quoteClaims(quote),
    // A copy per result, so a caller that edits its claims cannot change another result's.
    ...(chain.readable && chain.claims !== undefined
      ? { pck: { ...chain.claims, cpusvn_components: [...chain.claims.cpusvn_components] } }
      : {}),
    ...(tcb === undefined ? {} : { tcb }),
  };
  return {
    tee: 'tdx',
    valid: log.valid,
    error: log.error,
    checks: log.checks,
    claims,
    appraisal: tdxAppraisalInput(quote, claims, sgx),
  };
}
