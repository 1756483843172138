import { z } from 'zod';
import {
  TresorError,
  ATTESTATION_BUNDLE_VERSION,
  type ComponentEvidence,
  type ErrorCode,
} from '@tresor/protocol';
import { base64ToBytes, decodeKeyConfig, reportDataMatches, type OhttpKeyConfig } from '@tresor/crypto';
import {
  requireReleasedWorkload,
  requireResident,
  residencyIds,
  sampleMachineId,
  verifyAttestation,
  type ReferenceValues,
  type ResidencyInventory,
  type SampleVerifyKey,
} from '@tresor/attestation';

/** What a replica's evidence must show to receive requests. */
export interface ReplicaExpectations {
  /** The nonce the gateway sent (lowercase hex). */
  readonly nonce: string;
  /** SHA-256 of the SPKI of the certificate the mTLS connection presented. */
  readonly peerTlsSpkiSha256: string;
  readonly now: Date;
  readonly referenceValues: ReferenceValues;
  readonly inventory: ResidencyInventory;
  /** Where processing may happen; `CH` unless configured otherwise. */
  readonly jurisdiction?: string;
  /** Evidence older than this (from `producedAt`) is stale. */
  readonly maxAgeMs: number;
}

/** A replica whose evidence verified: what routing needs from it. */
export interface VerifiedReplica {
  readonly id: string;
  readonly tee: 'snp' | 'tdx' | 'sample';
  readonly models: readonly string[];
  readonly hpkeKeyConfig: OhttpKeyConfig;
  readonly tlsSpkiSha256: string;
  readonly producedAt: Date;
}

/**
 * Verifies a serving replica's evidence. The default is {@link AttestationReplicaVerifier}; the
 * SDK's `verifyComponentEvidence` can be plugged in behind the same interface so the gateway and
 * clients check exactly the same things.
 */
export interface ReplicaVerifier {
  /** @throws TresorError naming the first check that failed; never resolves for evidence that did not verify */
  verify(evidence: unknown, expectations: ReplicaExpectations): Promise<VerifiedReplica>;
}

const HEX64 = /^[0-9a-f]{64}$/;
const runtimeDataSchema = z.strictObject({
  version: z.number().int(),
  component: z.enum(['gateway', 'serving']),
  nonce: z.string().regex(HEX64),
  hpkeKeyConfig: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .max(4096),
  tlsSpkiSha256: z.string().regex(HEX64),
  gpuEvidenceSha256: z.string().regex(HEX64).optional(),
  models: z
    .array(z.strictObject({ id: z.string().min(1).max(256), sha256: z.string().regex(HEX64) }))
    .max(256)
    .optional(),
  receiptKey: z
    .strictObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string().max(64) })
    .optional(),
});
export const componentEvidenceSchema = z.strictObject({
  component: z.enum(['gateway', 'serving']),
  id: z.string().min(1).max(128),
  tee: z.enum(['snp', 'tdx', 'sample']),
  evidence: z
    .string()
    .min(1)
    .max(2 * 1024 * 1024),
  runtimeData: runtimeDataSchema,
  gpu: z.strictObject({ evidence: z.string().max(4 * 1024 * 1024) }).optional(),
  producedAt: z.iso.datetime({ offset: true }),
});

export interface AttestationReplicaVerifierOptions {
  /** The installation's sample TEE key; without it sample evidence is refused (production). */
  readonly sampleVerifyKey?: SampleVerifyKey;
}

function fail(code: ErrorCode, message: string): never {
  throw new TresorError(code, `serving replica: ${message}`);
}

/**
 * The gateway's own replica verifier: the evidence signature (packages/attestation), report data =
 * SHA-384(JCS(runtimeData)) ‖ 0¹⁶, the nonce, the mTLS certificate against the bound TLS key, debug
 * off, the measurements against the signed reference values (component `serving`), every hardware id
 * in the residency inventory, and freshness. Sample evidence is accepted only with a sample key
 * (local mode). SEV-SNP and TDX need endorsements (VCEK chains, TDX collateral) that this verifier
 * does not fetch: plug in the SDK's verifier for hardware replicas.
 */
export class AttestationReplicaVerifier implements ReplicaVerifier {
  readonly #sampleKey: SampleVerifyKey | undefined;

  constructor(options: AttestationReplicaVerifierOptions = {}) {
    this.#sampleKey = options.sampleVerifyKey;
  }

  async verify(input: unknown, expect: ReplicaExpectations): Promise<VerifiedReplica> {
    const parsed = componentEvidenceSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      fail(
        'ATTESTATION_EVIDENCE_MALFORMED',
        `the evidence bundle is malformed at ${issue?.path.join('.') ?? '?'}`,
      );
    }
    const evidence = parsed.data as ComponentEvidence;
    const rd = evidence.runtimeData;
    if (evidence.component !== 'serving' || rd.component !== 'serving') {
      fail('ATTESTATION_POLICY_VIOLATION', 'the evidence is not a serving component’s');
    }
    if (rd.version !== ATTESTATION_BUNDLE_VERSION) {
      fail(
        'ATTESTATION_EVIDENCE_MALFORMED',
        `runtime data version ${rd.version} is not ${ATTESTATION_BUNDLE_VERSION}`,
      );
    }
    if (rd.nonce !== expect.nonce) fail('REPORT_DATA_MISMATCH', 'the evidence does not echo the nonce sent');
    if (rd.tlsSpkiSha256 !== expect.peerTlsSpkiSha256) {
      fail('TLS_KEY_MISMATCH', 'the mTLS certificate is not the one the evidence binds');
    }
    const producedAt = new Date(evidence.producedAt);
    const ageMs = expect.now.getTime() - producedAt.getTime();
    if (Number.isNaN(ageMs) || ageMs > expect.maxAgeMs || ageMs < -60_000) {
      fail('EVIDENCE_STALE', `the evidence was produced at ${evidence.producedAt}`);
    }
    if (evidence.tee !== 'sample') {
      fail(
        'ATTESTATION_TEE_UNSUPPORTED',
        `${evidence.tee} evidence needs the SDK verifier with endorsements; the built-in verifier checks sample evidence only`,
      );
    }
    if (this.#sampleKey === undefined) {
      fail('SAMPLE_TEE_NOT_ALLOWED', 'sample TEE evidence is refused (no sample key configured: production)');
    }
    let bytes: Uint8Array;
    try {
      bytes = base64ToBytes(evidence.evidence);
    } catch {
      fail('ATTESTATION_EVIDENCE_MALFORMED', 'the evidence is not base64');
    }
    const { result } = await verifyAttestation({
      files: { evidence: bytes, sample_key: new TextEncoder().encode(this.#sampleKey.hex) },
      tee: 'sample',
      now: expect.now,
    });
    if (!result.valid) fail(result.error ?? 'ATTESTATION_SIGNATURE_INVALID', 'the evidence does not verify');
    const appraisal = result.appraisal;
    if (appraisal.debug) fail('ATTESTATION_DEBUG_ENABLED', 'the TEE runs in debug mode');
    if (appraisal.reportData === null) fail('REPORT_DATA_MISMATCH', 'the evidence carries no report data');
    const reportData = Uint8Array.from(Buffer.from(appraisal.reportData, 'hex'));
    if (!(await reportDataMatches(reportData, rd))) {
      fail('REPORT_DATA_MISMATCH', 'the report data is not the hash of the runtime data');
    }
    requireReleasedWorkload(
      expect.referenceValues.referenceValues,
      { tee: appraisal.tee, measurements: appraisal.measurements },
      'serving',
    );
    requireResident(
      expect.inventory,
      residencyIds(appraisal, sampleMachineId(this.#sampleKey)),
      expect.jurisdiction,
    );
    let hpkeKeyConfig: OhttpKeyConfig;
    try {
      hpkeKeyConfig = decodeKeyConfig(base64ToBytes(rd.hpkeKeyConfig));
    } catch {
      fail('ATTESTATION_EVIDENCE_MALFORMED', 'the bound HPKE key configuration does not decode');
    }
    return {
      id: evidence.id,
      tee: evidence.tee,
      models: (rd.models ?? []).map((m) => m.id),
      hpkeKeyConfig,
      tlsSpkiSha256: rd.tlsSpkiSha256,
      producedAt,
    };
  }
}
