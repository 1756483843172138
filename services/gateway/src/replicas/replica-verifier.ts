import { z } from 'zod';
import { TresorError, type ComponentEvidence } from '@tresor/protocol';
import type { OhttpKeyConfig } from '@tresor/crypto';
import type { ReferenceValues, ResidencyInventory, SampleVerifyKey, VerifierSet } from '@tresor/attestation';
import { verifyComponentEvidence, type TresorPolicy } from '@tresor/sdk';

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
 * Verifies a serving replica's evidence. The default is {@link PolicyReplicaVerifier}: the SDK's
 * `verifyComponentEvidence`, so the gateway and its clients check exactly the same things.
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

/** What the gateway requires of replicas beyond the signed documents (config `serving.policy`). */
export interface ReplicaPolicyOptions {
  /** The installation's sample TEE key; without it sample evidence is refused (production). */
  readonly sampleVerifyKey?: SampleVerifyKey;
  /** Where processing may happen, per the signed residency inventory; `["CH"]` by default. */
  readonly jurisdictions?: readonly string[];
  /** Minimum TCB per TEE kind (the client policy's `minimumTcb` shape). */
  readonly minimumTcb?: TresorPolicy['minimumTcb'];
  /** Replicas must present NVIDIA GPU evidence in confidential-computing mode. */
  readonly requireGpu?: boolean;
  /** Oldest evidence accepted. */
  readonly maxEvidenceAgeSeconds: number;
  /** Verifier implementations (default: the WebCrypto verifiers the SDK uses). */
  readonly verifiers?: VerifierSet;
}

/**
 * The client trust policy the gateway holds its replicas to: any `serving` release in the trust
 * service's signed reference values (the gateway fetched and verified those documents itself),
 * residency per the signed inventory, no debug, the sample TEE only when a sample key is configured
 * (local mode; production configurations cannot name one).
 */
export function replicaTrustPolicy(options: ReplicaPolicyOptions): TresorPolicy {
  const sample = options.sampleVerifyKey;
  return Object.freeze({
    version: 1,
    // The documents arrive already verified (TrustDocumentSource); no document key is used here.
    trustServiceKeys: [],
    trustSignedReferenceValues: true,
    releases: [],
    measurements: [],
    minimumTcb: [...(options.minimumTcb ?? [])],
    jurisdictions: [...(options.jurisdictions ?? ['CH'])],
    allowSampleTee: sample !== undefined,
    sampleVerifyKeys: sample === undefined ? [] : [sample],
    maxEvidenceAgeSeconds: options.maxEvidenceAgeSeconds,
    requireGpu: options.requireGpu ?? false,
    requireReceipts: true,
  });
}

/**
 * The gateway's replica verifier: the evidence is parsed at the edge, then checked by the SDK's
 * `verifyComponentEvidence` — signature and certificate chain (SEV-SNP, TDX, sample), debug off,
 * TCB, report data = SHA-384(JCS(runtimeData)) ‖ 0¹⁶, the nonce, the mTLS key against the bound TLS
 * key, the bound HPKE key, the measurement in the signed reference values, the loaded models, GPU
 * evidence, residency, freshness and the receipt key — exactly what a client checks. The first
 * failed check is thrown with its catalogue code.
 */
export class PolicyReplicaVerifier implements ReplicaVerifier {
  readonly #policy: TresorPolicy;
  readonly #verifiers: VerifierSet | undefined;

  constructor(options: ReplicaPolicyOptions) {
    this.#policy = replicaTrustPolicy(options);
    this.#verifiers = options.verifiers;
  }

  get policy(): TresorPolicy {
    return this.#policy;
  }

  async verify(input: unknown, expect: ReplicaExpectations): Promise<VerifiedReplica> {
    const parsed = componentEvidenceSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TresorError(
        'ATTESTATION_EVIDENCE_MALFORMED',
        `serving replica: the evidence bundle is malformed at ${issue?.path.join('.') ?? '?'}`,
      );
    }
    const evidence = parsed.data as ComponentEvidence;
    const policy =
      expect.jurisdiction === undefined
        ? this.#policy
        : { ...this.#policy, jurisdictions: [expect.jurisdiction] };
    const verification = await verifyComponentEvidence(evidence, {
      policy,
      nonce: expect.nonce,
      now: expect.now,
      referenceValues: expect.referenceValues,
      inventory: expect.inventory,
      component: 'serving',
      tlsSpkiSha256: expect.peerTlsSpkiSha256,
      ...(this.#verifiers === undefined ? {} : { verifiers: this.#verifiers }),
    });
    const failed = verification.checks.find((c) => c.status === 'fail');
    if (failed !== undefined || !verification.ok) {
      throw new TresorError(
        failed?.code ?? 'VERIFICATION_FAILED',
        `serving replica ${evidence.id}: check ${failed?.check ?? '?'} failed (${failed?.seen ?? 'no detail'}; expected ${failed?.expected ?? '?'})`,
      );
    }
    const { identity } = verification;
    if (identity.keyConfig === null) {
      throw new TresorError(
        'OHTTP_KEY_CONFIG_MALFORMED',
        'serving replica: the bound HPKE key does not decode',
      );
    }
    // The pool's freshness rule (maxAgeMs) may be stricter than the policy's whole seconds.
    const producedAt = new Date(evidence.producedAt);
    if (expect.now.getTime() - producedAt.getTime() > expect.maxAgeMs) {
      throw new TresorError(
        'EVIDENCE_STALE',
        `serving replica: the evidence was produced at ${evidence.producedAt}`,
      );
    }
    return {
      id: identity.id,
      tee: identity.tee,
      models: identity.models.map((m) => m.id),
      hpkeKeyConfig: identity.keyConfig,
      tlsSpkiSha256: identity.tlsSpkiSha256,
      producedAt,
    };
  }
}
