import { sameCertificate, validityAt, type Certificate } from '../certs.js';
import type { CheckResult } from '../types.js';
import { amdAuthorities } from './amd-roots.js';
import type { ChainVerdicts } from './chain-verdicts.js';
import type { ParsedEndorsements } from './endorsements.js';
import { commonName } from './names.js';
import { productFromCommonName, productFromCpuid, type SnpProduct } from './product.js';
import type { SnpReport } from './report.js';

/**
 * The AMD chain ARK → ASK (VCEK path) or ASVK (VLEK path) → VCEK/VLEK, resolved for one report.
 * The report's product picks the pinned ARK: a supplied ARK must be byte-identical to it, and where
 * the caller supplies no ARK or ASK/ASVK the pinned ones stand in.
 */
export interface ResolvedChain {
  /** The product the report is verified as, or null when nothing names a known product. */
  readonly product: SnpProduct | null;
  /** The product CPUID names (version 3+), null when unknown or absent. */
  readonly cpuidProduct: SnpProduct | null;
  readonly pinnedArk: Certificate | null;
  readonly ark: Certificate | null;
  readonly intermediate: Certificate | null;
  readonly leaf: Certificate;
}

/**
 * Which product the report is: CPUID (signed, version 3+) first, then the caller's word, then the
 * VCEK/VLEK issuer (`SEV-Milan`), the only place a version-2 report's product is written down.
 */
export function resolveChain(
  report: SnpReport,
  parsed: ParsedEndorsements,
  callerProduct: SnpProduct | undefined,
): ResolvedChain {
  const cpuidProduct =
    report.cpuid === null ? null : productFromCpuid(report.cpuid.family, report.cpuid.model);
  const product =
    report.cpuid === null
      ? (callerProduct ?? parsed.leafIssuerProduct)
      : (cpuidProduct ?? callerProduct ?? null);
  const authorities = product === null ? null : amdAuthorities(product);
  const pinnedIntermediate =
    authorities === null ? null : report.signingKey === 'vlek' ? authorities.asvk : authorities.ask;
  return {
    product,
    cpuidProduct,
    pinnedArk: authorities?.ark ?? null,
    ark: parsed.suppliedArk ?? authorities?.ark ?? null,
    intermediate: parsed.suppliedIntermediate ?? pinnedIntermediate,
    leaf: parsed.leaf,
  };
}

const pass = (detail: string): CheckResult => ({ ok: true, detail });

export function checkArkPinned(chain: ResolvedChain): CheckResult {
  if (chain.product === null || chain.pinnedArk === null) {
    return {
      ok: false,
      code: 'ATTESTATION_ROOT_UNTRUSTED',
      detail: 'the report names no known product (Milan, Genoa, Turin), so no pinned ARK applies',
    };
  }
  if (chain.ark === null || !sameCertificate(chain.ark, chain.pinnedArk)) {
    return {
      ok: false,
      code: 'ATTESTATION_ROOT_UNTRUSTED',
      detail: `the chain's root (${chain.ark?.subject ?? 'none'}) is not AMD's pinned ARK-${chain.product}`,
    };
  }
  return pass(`ARK-${chain.product} equals the pinned AMD root`);
}

/** One signature link of the chain (names without article: `ASK/ASVK`); a missing certificate fails it. */
export async function checkSignedBy(
  verdicts: ChainVerdicts,
  cert: Certificate | null,
  issuer: Certificate | null,
  names: { cert: string; issuer: string },
): Promise<CheckResult> {
  if (cert === null || issuer === null) {
    const missing = cert === null ? names.cert : names.issuer;
    return {
      ok: false,
      code: 'ATTESTATION_CERT_CHAIN_INVALID',
      detail: `no ${missing} certificate was supplied`,
    };
  }
  return (await verdicts.signedBy(cert, issuer))
    ? pass(`the ${names.cert} is signed by the ${names.issuer}`)
    : {
        ok: false,
        code: 'ATTESTATION_CERT_CHAIN_INVALID',
        detail: `the ${names.cert} is not signed by the ${names.issuer}`,
      };
}

/** Every certificate of the chain is within notBefore..notAfter at `now` (RFC 5280 §4.1.2.5). */
export function checkValidityAt(chain: ResolvedChain, now: Date): CheckResult {
  const certs = [chain.leaf, chain.intermediate, chain.ark].filter((c): c is Certificate => c !== null);
  for (const cert of certs) {
    const validity = validityAt(cert, now);
    if (validity === 'not_yet_valid') {
      return {
        ok: false,
        code: 'ATTESTATION_CERT_NOT_YET_VALID',
        detail: `${commonName(cert, 'subject') ?? cert.subject} is valid from ${cert.notBefore.toISOString()}, after ${now.toISOString()}`,
      };
    }
    if (validity === 'expired') {
      return {
        ok: false,
        code: 'ATTESTATION_CERT_EXPIRED',
        detail: `${commonName(cert, 'subject') ?? cert.subject} expired at ${cert.notAfter.toISOString()}, before ${now.toISOString()}`,
      };
    }
  }
  return pass(`all certificates are valid at ${now.toISOString()}`);
}

/**
 * The key the report names in SIGNING_KEY is the certificate supplied: a VCEK (issued by the ASK,
 * CN=SEV-<product>) or a VLEK (issued by the ASVK, CN=SEV-VLEK-<product>). SIGNING_KEY "none" means
 * the firmware did not sign the report at all.
 */
export function checkSignerMatchesCert(
  report: SnpReport,
  chain: ResolvedChain,
  parsed: ParsedEndorsements,
): CheckResult {
  if (report.signingKey === 'none') {
    return {
      ok: false,
      code: 'ATTESTATION_SIGNATURE_INVALID',
      detail: 'the report is unsigned (SIGNING_KEY is none)',
    };
  }
  const expected = report.signingKey.toUpperCase();
  if (parsed.leafKind !== report.signingKey) {
    return {
      ok: false,
      code: 'ATTESTATION_CERT_CHAIN_INVALID',
      detail: `the report is signed by a ${expected} but the certificate is ${commonName(chain.leaf, 'subject') ?? 'unnamed'}`,
    };
  }
  const intermediateCn = chain.intermediate === null ? null : commonName(chain.intermediate, 'subject');
  const intermediateIsAsvk = intermediateCn?.startsWith('SEV-VLEK-') ?? false;
  if (intermediateCn !== null && intermediateIsAsvk !== (report.signingKey === 'vlek')) {
    return {
      ok: false,
      code: 'ATTESTATION_CERT_CHAIN_INVALID',
      detail: `a ${expected} is issued by the ${report.signingKey === 'vlek' ? 'ASVK' : 'ASK'}, not by ${intermediateCn}`,
    };
  }
  return pass(`signed by the ${expected} supplied`);
}

/** Every place that names a product agrees with the product the report is verified as. */
export function checkProductMatchesChain(
  report: SnpReport,
  chain: ResolvedChain,
  parsed: ParsedEndorsements,
  callerProduct: SnpProduct | undefined,
): CheckResult {
  const fail = (detail: string): CheckResult => ({ ok: false, code: 'ATTESTATION_ROOT_UNTRUSTED', detail });
  if (report.cpuid !== null && chain.cpuidProduct === null && callerProduct === undefined) {
    const { family, model } = report.cpuid;
    return fail(
      `CPUID family 0x${family.toString(16)} model 0x${model.toString(16)} is not a known SEV-SNP product`,
    );
  }
  if (chain.product === null)
    return fail('no product is named by the report, the caller or the certificate issuer');
  const cn = (cert: Certificate | null): SnpProduct | null => {
    const name = cert === null ? null : commonName(cert, 'subject');
    return name === null ? null : productFromCommonName(name);
  };
  const extensionName = parsed.extensions.productName;
  const named: [string, string | null][] = [
    ['the signer certificate issuer', parsed.leafIssuerProduct],
    ['the ASK/ASVK', cn(chain.intermediate)],
    ['the ARK', cn(chain.ark)],
    // VCEKs name product and stepping (`Milan-B0`), VLEKs the product alone (`Milan`).
    ['the signer certificate product_name extension', extensionName?.split('-')[0] ?? null],
  ];
  if (chain.cpuidProduct !== null) named.push(['the report CPUID', chain.cpuidProduct]);
  if (callerProduct !== undefined) named.push(['the caller', callerProduct]);
  for (const [where, product] of named) {
    if (product !== chain.product)
      return fail(`${where} names ${product ?? 'no known product'}, not ${chain.product}`);
  }
  return pass(`report and chain are ${chain.product}`);
}

/** The checks of the chain that depend on neither the time nor the report's measured contents. */
export interface ChainAssessment {
  readonly chain: ResolvedChain;
  readonly arkPinned: CheckResult;
  readonly arkSelfSigned: CheckResult;
  readonly askSignedByArk: CheckResult;
  readonly leafSignedByAsk: CheckResult;
  readonly signerMatchesCert: CheckResult;
  readonly productMatchesChain: CheckResult;
}

/**
 * What the chain assessment of `report` depends on besides the endorsements: the signing key, the
 * CPUID family and model (version 3+), and the product the caller names.
 */
export function assessmentKey(report: SnpReport, callerProduct: SnpProduct | undefined): string {
  const cpuid = report.cpuid === null ? '-' : `${report.cpuid.family}.${report.cpuid.model}`;
  return `${report.signingKey}/${cpuid}/${callerProduct ?? '-'}`;
}

/** Resolves the chain for `report` and checks it: pinned root, signatures, signer and product names. */
export async function assessChain(
  report: SnpReport,
  parsed: ParsedEndorsements,
  verdicts: ChainVerdicts,
  callerProduct: SnpProduct | undefined,
): Promise<ChainAssessment> {
  const chain = resolveChain(report, parsed, callerProduct);
  const [arkSelfSigned, askSignedByArk, leafSignedByAsk] = await Promise.all([
    checkSignedBy(verdicts, chain.ark, chain.ark, { cert: 'ARK', issuer: 'ARK' }),
    checkSignedBy(verdicts, chain.intermediate, chain.ark, { cert: 'ASK/ASVK', issuer: 'ARK' }),
    checkSignedBy(verdicts, chain.leaf, chain.intermediate, { cert: 'VCEK/VLEK', issuer: 'ASK/ASVK' }),
  ]);
  return {
    chain,
    arkPinned: checkArkPinned(chain),
    arkSelfSigned,
    askSignedByArk,
    leafSignedByAsk,
    signerMatchesCert: checkSignerMatchesCert(report, chain, parsed),
    productMatchesChain: checkProductMatchesChain(report, chain, parsed, callerProduct),
  };
}
