import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { base64ToBytes, hexToBytes, utf8Encode } from '@tresor/crypto';
import {
  DEFAULT_VERIFIERS,
  type SampleVerifyKey,
  type VerificationResult,
  type VerifierSet,
} from '@tresor/attestation';
import type { PrimaryTee } from '../kbs/protocol.js';

/**
 * Decodes the TEE-specific `primary_evidence` and `additional_evidence` of a KBS Attestation into
 * what packages/attestation verifies, and verifies it. Shapes (as guest-components' attesters send
 * them, where Tresor can verify them):
 *
 * - sample: `{svn, report_data, …}` — Trustee's sample evidence, plus Tresor's signed members;
 * - snp: `{attestation_report, cert_chain}` — the 1184-byte report as base64 (standard or url),
 *   hex, or a byte array; `cert_chain` the extended report's certificate table
 *   `[{cert_type: "VCEK" | "VLEK" | "ASK" | "ARK", data}]` with DER `data` as base64 or a byte array.
 *   (Trustee's structured serde form of `AttestationReport` is not read.)
 * - tdx: `{quote, cc_eventlog}` — the quote in base64; the CC event log is not replayed (RTMRs are
 *   compared as measurements instead);
 * - additional `nvidia`: the nvtrust JSON list of per-GPU evidence.
 */

/** Vendor material the evidence does not carry itself, fetched by the deployment (PCS, KDS) or pinned in tests. */
export interface EndorsementProvider {
  /** Intel DCAP collateral (dcap-qvl JSON) for a TDX quote; without it the TCB status is unknown. */
  tdxCollateral?(quote: Uint8Array): Promise<Uint8Array | undefined>;
  /** The VCEK/VLEK for an SNP report whose evidence carries no certificate table (AMD KDS). */
  snpSignerCertificate?(report: Uint8Array): Promise<Uint8Array | undefined>;
}

export interface EvidenceVerification {
  readonly verifiers?: VerifierSet;
  readonly endorsements?: EndorsementProvider;
  readonly sampleVerifyKey?: SampleVerifyKey;
  readonly acceptUnsignedSample: boolean;
  readonly now: Date;
}

/** A verified primary evidence, with the sample TEE's init-data member when present. */
export interface VerifiedPrimaryEvidence {
  readonly result: VerificationResult;
  readonly sampleInitData: string | null;
}

const MAX_CERTIFICATES = 8;

function malformed(tee: string, why: string): TresorError {
  return new TresorError(
    'ATTESTATION_EVIDENCE_MALFORMED',
    `the ${tee} primary_evidence is malformed: ${why}`,
  );
}

const bytesSchema = z.union([
  z.string().max(1 << 20),
  z.array(z.number().int().min(0).max(255)).max(1 << 20),
]);

function decodeBytes(value: z.infer<typeof bytesSchema>, tee: string, member: string): Uint8Array {
  if (Array.isArray(value)) return Uint8Array.from(value);
  try {
    return /^(?:[0-9a-fA-F]{2})+$/.test(value) && value.length === 2 * 1184
      ? hexToBytes(value)
      : base64ToBytes(value);
  } catch {
    throw malformed(tee, `${member} is neither base64 nor hex`);
  }
}

const snpSchema = z.object({
  attestation_report: bytesSchema,
  cert_chain: z
    .array(z.object({ cert_type: z.string().max(16), data: bytesSchema }))
    .max(MAX_CERTIFICATES)
    .nullable()
    .optional(),
});

const tdxSchema = z.object({
  quote: z.string().max(1 << 20),
  cc_eventlog: z.string().nullable().optional(),
});

function derToPem(der: Uint8Array): string {
  const body = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

function shape<T>(schema: z.ZodType<T>, value: unknown, tee: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : ` at "${issue.path.join('.')}"`;
    throw malformed(tee, `${issue?.message ?? 'wrong shape'}${where}`);
  }
  return parsed.data;
}

async function verifySnp(
  evidence: unknown,
  options: EvidenceVerification,
  verifiers: VerifierSet,
): Promise<VerificationResult> {
  const { attestation_report: reportValue, cert_chain: certChain } = shape(snpSchema, evidence, 'snp');
  const report = decodeBytes(reportValue, 'snp', 'attestation_report');
  const entries = (certChain ?? []).map((entry) => ({
    type: entry.cert_type.toUpperCase(),
    der: decodeBytes(entry.data, 'snp', 'cert_chain data'),
  }));
  const signer =
    entries.find((e) => e.type === 'VCEK' || e.type === 'VLEK')?.der ??
    (await options.endorsements?.snpSignerCertificate?.(report));
  if (signer === undefined)
    throw malformed('snp', 'cert_chain holds no VCEK or VLEK, and none could be fetched');
  const authorities = entries.filter((e) => e.type === 'ASK' || e.type === 'ASVK' || e.type === 'ARK');
  return verifiers.snp.verify(
    verifiers.snp.parse(report),
    {
      signerCert: signer,
      ...(authorities.length === 0
        ? {}
        : { caChain: utf8Encode(authorities.map((e) => derToPem(e.der)).join('')) }),
    },
    { now: options.now },
  );
}

async function verifyTdx(
  evidence: unknown,
  options: EvidenceVerification,
  verifiers: VerifierSet,
): Promise<VerificationResult> {
  const { quote: quoteText } = shape(tdxSchema, evidence, 'tdx');
  let quote: Uint8Array;
  try {
    quote = base64ToBytes(quoteText);
  } catch {
    throw malformed('tdx', 'quote is not base64');
  }
  const collateral = await options.endorsements?.tdxCollateral?.(quote);
  return verifiers.tdx.verify(verifiers.tdx.parse(quote), collateral === undefined ? {} : { collateral }, {
    now: options.now,
  });
}

async function verifySample(
  evidence: unknown,
  options: EvidenceVerification,
  verifiers: VerifierSet,
): Promise<VerifiedPrimaryEvidence> {
  if (typeof evidence !== 'object' || evidence === null || Array.isArray(evidence)) {
    throw malformed('sample', 'expected a JSON object {svn, report_data, …}');
  }
  const parsed = verifiers.sample.parse(utf8Encode(JSON.stringify(evidence)));
  const result = await verifiers.sample.verify(
    parsed,
    {
      ...(options.sampleVerifyKey === undefined ? {} : { verifyKey: options.sampleVerifyKey }),
      ...(options.acceptUnsignedSample ? { acceptUnsigned: true } : {}),
    },
    { now: options.now },
  );
  return { result, sampleInitData: parsed.initData?.toLowerCase() ?? null };
}

/**
 * Verifies the primary evidence of `tee`. Verification failures are in the result; unusable input
 * throws ATTESTATION_EVIDENCE_MALFORMED.
 */
export async function verifyPrimaryEvidence(
  tee: PrimaryTee,
  evidence: unknown,
  options: EvidenceVerification,
): Promise<VerifiedPrimaryEvidence> {
  const verifiers = options.verifiers ?? DEFAULT_VERIFIERS;
  switch (tee) {
    case 'sample':
      return verifySample(evidence, options, verifiers);
    case 'snp':
      return { result: await verifySnp(evidence, options, verifiers), sampleInitData: null };
    case 'tdx':
      return { result: await verifyTdx(evidence, options, verifiers), sampleInitData: null };
  }
}

/**
 * Verifies the additional evidence string: "" (none) or a JSON map from device TEE name to its
 * evidence. GPUs must have signed `gpuNonce` (derived from the session's challenge).
 *
 * @throws TresorError ATTESTATION_EVIDENCE_MALFORMED, ATTESTATION_TEE_UNSUPPORTED
 */
export async function verifyAdditionalEvidence(
  additional: string,
  gpuNonce: string,
  options: EvidenceVerification,
): Promise<readonly VerificationResult[]> {
  if (additional === '') return [];
  let devices: unknown;
  try {
    devices = JSON.parse(additional) as unknown;
  } catch {
    throw new TresorError('ATTESTATION_EVIDENCE_MALFORMED', 'additional_evidence is not a JSON-encoded map');
  }
  if (typeof devices !== 'object' || devices === null || Array.isArray(devices)) {
    throw new TresorError('ATTESTATION_EVIDENCE_MALFORMED', 'additional_evidence is not a JSON-encoded map');
  }
  const verifiers = options.verifiers ?? DEFAULT_VERIFIERS;
  const results: VerificationResult[] = [];
  for (const [tee, evidence] of Object.entries(devices as Record<string, unknown>)) {
    if (tee !== 'nvidia') {
      throw new TresorError(
        'ATTESTATION_TEE_UNSUPPORTED',
        `additional evidence of ${JSON.stringify(tee.slice(0, 32))} is not supported; only "nvidia" GPUs are`,
      );
    }
    const parsed = verifiers.nvidia.parse(utf8Encode(JSON.stringify(evidence)));
    results.push(await verifiers.nvidia.verify(parsed, { expectedNonce: gpuNonce }, { now: options.now }));
  }
  return results;
}
