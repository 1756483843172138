import { bytesToHex } from '@tresor/crypto';
import { isTresorError, TresorError } from '@tresor/protocol';
import type { Crl } from '../certs.js';
import { CheckLog } from '../check-log.js';
import { webCryptoSignatureVerifier, type SignatureVerifier } from '../signatures/index.js';
import type { AppraisalInput, CheckResult, VerificationResult, Verifier, VerifyOptions } from '../types.js';
import { checkCertHwId, checkCertTcb } from './binding.js';
import { assessChain, assessmentKey, checkValidityAt, type ResolvedChain } from './chain.js';
import type { ChainVerdicts } from './chain-verdicts.js';
import { snpClaims, type SnpClaims } from './claims.js';
import { ParsedEndorsements, SnpChainCache, type SnpEndorsements } from './endorsements.js';
import { snpReportBytes } from './evidence-formats.js';
import type { SnpProduct } from './product.js';
import { parseSnpReportBytes, type SnpReport } from './report.js';
import {
  SIGNATURE_ALGO_ECDSA_P384_SHA384,
  signatureP1363,
  verifyReportSignature,
} from './report-signature.js';
import { checkRevocation } from './revocation.js';
import { decodeTcb, tcbComponents } from './tcb.js';

export interface SnpVerifierOptions {
  /**
   * Where parsed endorsements (certificates, extensions, signature checks between them, the VCEK's
   * imported key) are kept between calls. Default: a private 64-entry cache. `null` disables
   * caching, so every call parses and verifies the whole chain again. A cache may be shared by
   * verifiers with different signature verifiers: their keys and verdicts are kept apart.
   */
  readonly chainCache?: SnpChainCache | null;
  /**
   * Checks every signature (report, chain, CRL). Default: WebCrypto, which runs in browsers;
   * servers pass `nodeSignatureVerifier` from `@tresor/attestation/node`.
   */
  readonly signatures?: SignatureVerifier;
}

export type SnpVerifier = Verifier<SnpReport, SnpEndorsements> & {
  verify(
    report: SnpReport,
    endorsements: SnpEndorsements,
    options: VerifyOptions,
  ): Promise<VerificationResult<SnpClaims>>;
};

/**
 * The SEV-SNP verifier: `parse` accepts a raw report, its hex text, an Azure HCL report or Trustee
 * az-snp-vtpm JSON; `verify` checks, in this order (each recorded, the first failure deciding the
 * error code): the ARK is AMD's pinned root for the report's product, the chain's RSA-PSS
 * signatures, validity at `now`, the CRL when one is given, that the certificate is the key the report
 * names (VCEK/VLEK), that every product name agrees, the certificate's TCB and hardware ID against
 * the report, and finally the report's ECDSA P-384 signature. DEBUG and the other policy bits are
 * claims for appraisal, not hardware failures.
 */
export function createSnpVerifier(options: SnpVerifierOptions = {}): SnpVerifier {
  const cache = options.chainCache === undefined ? new SnpChainCache() : options.chainCache;
  const signatures = options.signatures ?? webCryptoSignatureVerifier;
  return {
    tee: 'snp',
    parse: (evidence) => parseSnpReportBytes(snpReportBytes(evidence)),
    verify: async (report, endorsements, { now }) => {
      const parsed = cache === null ? ParsedEndorsements.parse(endorsements) : cache.get(endorsements);
      try {
        return await verifySnpReport(report, endorsements.product, parsed, parsed.verdicts(signatures), now);
      } catch (cause) {
        // @peculiar/x509 decodes certificate fields lazily, so a certificate that parsed can still
        // fail when a field is first read: that is unusable input, never a library exception.
        if (isTresorError(cause)) throw cause;
        throw new TresorError('INPUT_MALFORMED', 'a supplied certificate or CRL has unreadable fields', {
          cause,
        });
      }
    },
  };
}

/** The default verifier, with its own chain cache. */
export const snpVerifier: SnpVerifier = createSnpVerifier();

async function verifySnpReport(
  report: SnpReport,
  callerProduct: SnpProduct | undefined,
  parsed: ParsedEndorsements,
  verdicts: ChainVerdicts,
  now: Date,
): Promise<VerificationResult<SnpClaims>> {
  const log = new CheckLog();
  const record = (name: string, result: CheckResult): void => {
    if (result.ok) log.pass(name, result.detail);
    else log.fail(name, result.code ?? 'ATTESTATION_CERT_CHAIN_INVALID', result.detail);
  };
  // The chain's own checks are made once per endorsements (and memoised with them); the report's
  // signature, the time and the report-to-certificate bindings are checked on every call.
  const [assessment, signature] = await Promise.all([
    verdicts.assessment(assessmentKey(report, callerProduct), () =>
      assessChain(report, parsed, verdicts, callerProduct),
    ),
    checkReportSignature(report, verdicts),
  ]);
  const { chain } = assessment;

  record('ark_pinned', assessment.arkPinned);
  record('ark_self_signed', assessment.arkSelfSigned);
  record('ask_signed_by_ark', assessment.askSignedByArk);
  record('leaf_signed_by_ask', assessment.leafSignedByAsk);
  record('certs_valid_at_time', checkValidityAt(chain, now));
  if (parsed.crl !== null) record('crl', await checkCrl(parsed.crl, verdicts, chain, now));
  record('signer_matches_cert', assessment.signerMatchesCert);
  record('product_matches_chain', assessment.productMatchesChain);
  record('cert_tcb_equals_reported_tcb', checkCertTcb(report, chain.product, parsed.extensions));
  // A VLEK is issued to a cloud provider, not to a chip: it has no hardware ID to compare.
  if (report.signingKey !== 'vlek') {
    record('cert_hwid_equals_chip_id', checkCertHwId(report, chain.product, parsed.extensions));
  }
  record('report_signature', signature);

  const claims = snpClaims(report, chain.product, parsed.signerClaims);
  return {
    tee: 'snp',
    valid: log.valid,
    error: log.error,
    checks: log.checks,
    claims,
    appraisal: appraisalInput(report, claims, parsed),
  };
}

async function checkCrl(
  crl: Crl,
  verdicts: ChainVerdicts,
  chain: ResolvedChain,
  now: Date,
): Promise<CheckResult> {
  if (chain.ark === null) {
    return { ok: false, code: 'ATTESTATION_CRL_INVALID', detail: 'no ARK to check the CRL signature with' };
  }
  return checkRevocation(
    crl,
    { ark: chain.ark, intermediate: chain.intermediate, leaf: chain.leaf },
    now,
    (issuer) => verdicts.crlSignedBy(issuer),
  );
}

async function checkReportSignature(report: SnpReport, verdicts: ChainVerdicts): Promise<CheckResult> {
  const fail = (detail: string): CheckResult => ({
    ok: false,
    code: 'ATTESTATION_SIGNATURE_INVALID',
    detail,
  });
  if (report.signingKey === 'none') return fail('the report is unsigned (SIGNING_KEY is none)');
  if (report.signatureAlgo !== SIGNATURE_ALGO_ECDSA_P384_SHA384) {
    return fail(`signature algorithm ${report.signatureAlgo} is not ECDSA P-384 with SHA-384 (1)`);
  }
  const signature = signatureP1363(report);
  if (typeof signature === 'string') return fail(signature);
  const leafKey = await verdicts.leafKey();
  if (leafKey.key === null) return fail(leafKey.problem);
  return (await verifyReportSignature(report, leafKey.key, signature, verdicts.signatures))
    ? { ok: true, detail: 'ECDSA P-384 signature verifies with the signer certificate' }
    : fail('the ECDSA P-384 signature does not verify with the signer certificate');
}

const CHIP_ID_SIZE = 64;

/** What the chip is for the residency inventory: CHIP_ID, or the VCEK's hwID when CHIP_ID is masked. */
function hardwareIds(report: SnpReport, claims: SnpClaims, parsed: ParsedEndorsements): string[] {
  if (report.signingKey !== 'vcek') return [];
  if (report.chipId.some((b) => b !== 0)) return [claims.chip_id];
  const hwId = parsed.extensions.hwId;
  if (hwId === null || hwId.length > CHIP_ID_SIZE) return [];
  const padded = new Uint8Array(CHIP_ID_SIZE);
  padded.set(hwId);
  return [bytesToHex(padded)];
}

/** The appraisal view, from the claims just made (the same decoded policy and hex strings). */
function appraisalInput(report: SnpReport, claims: SnpClaims, parsed: ParsedEndorsements): AppraisalInput {
  const { policy, platform_info_decoded: platform } = claims;
  const tcb: Record<string, number | string> = {};
  if (claims.product !== null) {
    tcb.product = claims.product;
    for (const [name, value] of tcbComponents(decodeTcb(report.reportedTcb, claims.product)))
      tcb[name] = value;
  }
  return {
    tee: 'snp',
    insecure: false,
    debug: policy.debug,
    measurements: { measurement: claims.measurement, host_data: claims.host_data },
    reportData: claims.report_data,
    hardwareIds: hardwareIds(report, claims, parsed),
    tcb,
    vmpl: report.vmpl,
    nonce: null,
    flags: {
      smt_allowed: policy.smt_allowed,
      migrate_ma: policy.migrate_ma,
      single_socket: policy.single_socket,
      cxl_allowed: policy.cxl_allowed,
      mem_aes_256_xts: policy.mem_aes_256_xts,
      rapl_dis: policy.rapl_dis,
      ciphertext_hiding: policy.ciphertext_hiding,
      page_swap_disable: policy.page_swap_disable,
      author_key_en: report.authorKeyEn,
      mask_chip_key: report.maskChipKey,
      vlek_signed: report.signingKey === 'vlek',
      platform_smt_enabled: platform.smt_enabled,
      platform_tsme_enabled: platform.tsme_enabled,
      platform_ecc_enabled: platform.ecc_enabled,
      platform_rapl_disabled: platform.rapl_disabled,
      platform_ciphertext_hiding_enabled: platform.ciphertext_hiding_enabled,
      platform_alias_check_complete: platform.alias_check_complete,
    },
  };
}
