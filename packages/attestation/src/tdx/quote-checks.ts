import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, equalBytes } from '@tresor/crypto';
import type { Certificate } from '../certs.js';
import type { CheckLog } from '../check-log.js';
import { chainValidityProblem } from './chain.js';
import type { PckChainExamination } from './pck-chain.js';
import type { TdxQuote } from './quote.js';
import { decodeTdAttributes } from './td-report.js';

/**
 * The hardware checks every TDX quote gets, collateral or not, in the order of the testdata's
 * `computed.checks` (the first failure names the result's error code). Together they establish:
 * the TD report was signed by an attestation key (quote_signature), that key was certified by a
 * quoting enclave (qe_report_data_binds_attestation_key) whose report Intel's PCK key for this
 * platform signed (qe_report_signature_by_pck), the PCK certificate chains to the pinned Intel SGX
 * Root CA and is valid now, and the TD is not a debug TD.
 */

export interface QuoteCheckInputs {
  readonly quote: TdxQuote;
  readonly chain: PckChainExamination;
  readonly quoteSignatureValid: boolean;
  readonly qeReportSignatureValid: boolean;
  /** The outcome of `qeReportDataBindsAttestationKey` for this quote (memoised by the caller). */
  readonly attestationKeyBound: boolean;
  /** False when the caller supplied an Intel root CA that is not the pinned one. */
  readonly suppliedRootIsPinned: boolean;
  readonly root: Certificate;
  readonly now: Date;
}

export function recordQuoteChecks(log: CheckLog, inputs: QuoteCheckInputs): void {
  const { quote, chain } = inputs;
  log.check(
    'quote_signature',
    inputs.quoteSignatureValid,
    'ATTESTATION_SIGNATURE_INVALID',
    inputs.quoteSignatureValid ? undefined : 'the header and TD report are not signed by the attestation key',
  );

  if (!chain.readable) {
    log.fail('qe_report_signature_by_pck', 'ATTESTATION_CERT_CHAIN_INVALID', chain.problem);
  } else if (chain.pckKey === undefined) {
    log.fail(
      'qe_report_signature_by_pck',
      'ATTESTATION_QE_REPORT_INVALID',
      'the PCK certificate has no P-256 key',
    );
  } else {
    log.check(
      'qe_report_signature_by_pck',
      inputs.qeReportSignatureValid,
      'ATTESTATION_QE_REPORT_INVALID',
      inputs.qeReportSignatureValid ? undefined : 'the QE report is not signed by the PCK certificate key',
    );
  }

  const bound = inputs.attestationKeyBound;
  log.check(
    'qe_report_data_binds_attestation_key',
    bound,
    'ATTESTATION_QE_REPORT_INVALID',
    bound ? undefined : 'QE report data is not SHA-256(attestation key || QE auth data) || 32 zero bytes',
  );

  recordPckChainChecks(log, inputs);

  const debug = decodeTdAttributes(quote.body.tdAttributes).debug;
  log.check(
    'td_not_debug',
    !debug,
    'ATTESTATION_DEBUG_ENABLED',
    debug ? 'TD attribute DEBUG (bit 0) is set: the host can read and modify TD memory' : undefined,
  );
}

/**
 * Intel TDX DCAP Quoting Library API, "QE Report Certification Data": the QE report's REPORTDATA is
 * SHA-256(attestation public key || QE authentication data) followed by 32 zero bytes, which is what
 * ties the key that signed the quote to the QE the PCK vouched for.
 */
export function qeReportDataBindsAttestationKey(quote: TdxQuote): boolean {
  const expected = concatBytes(
    sha256(concatBytes(quote.attestationKey, quote.qeAuthData)),
    new Uint8Array(32),
  );
  return equalBytes(expected, quote.qeReport.reportData);
}

function recordPckChainChecks(log: CheckLog, inputs: QuoteCheckInputs): void {
  const { chain, root, now } = inputs;
  if (!chain.readable) {
    log.fail('pck_chain_signatures', 'ATTESTATION_CERT_CHAIN_INVALID', chain.problem);
    log.fail('pck_chain_anchored_to_intel_root', 'ATTESTATION_CERT_CHAIN_INVALID', chain.problem);
    log.fail('pck_chain_valid_at_time', 'ATTESTATION_CERT_CHAIN_INVALID', chain.problem);
    return;
  }
  const { signatureProblem, anchored, certificates } = chain.chain;
  if (signatureProblem !== undefined) {
    log.fail('pck_chain_signatures', 'ATTESTATION_CERT_CHAIN_INVALID', signatureProblem);
  } else if (chain.sgx === undefined) {
    log.fail(
      'pck_chain_signatures',
      'ATTESTATION_CERT_CHAIN_INVALID',
      'the leaf is not an Intel SGX PCK certificate (no readable SGX extension 1.2.840.113741.1.13.1)',
    );
  } else {
    log.pass('pck_chain_signatures');
  }

  if (!inputs.suppliedRootIsPinned) {
    log.fail(
      'pck_chain_anchored_to_intel_root',
      'ATTESTATION_ROOT_UNTRUSTED',
      'the supplied Intel root CA is not the pinned Intel SGX Root CA',
    );
  } else {
    log.check(
      'pck_chain_anchored_to_intel_root',
      anchored,
      'ATTESTATION_ROOT_UNTRUSTED',
      anchored ? undefined : 'the PCK chain does not end in the Intel SGX Root CA',
    );
  }

  const validity = chainValidityProblem(certificates, root, now);
  if (validity === undefined) log.pass('pck_chain_valid_at_time');
  else log.fail('pck_chain_valid_at_time', validity.code, validity.detail);
}
