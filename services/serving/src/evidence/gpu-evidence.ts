import { isTresorError, TresorError } from '@tresor/protocol';

/** One collection of NVIDIA GPU evidence, bound to the nonce it was asked for. */
export interface GpuEvidence {
  /** The nvtrust JSON list of per-GPU evidence, as bytes (what `ComponentEvidence.gpu.evidence` carries). */
  readonly bytes: Uint8Array;
  /** The same list as the KBS `additional_evidence.nvidia` JSON value. */
  readonly kbsEvidence: unknown;
}

/**
 * Where NVIDIA GPU evidence comes from (the driver's attestation interface of a GPU in
 * confidential-computing mode). `collect` answers null when no GPU in CC mode is present; it must
 * never answer evidence that does not bind `nonceHex` (32 bytes, the SPDM nonce).
 */
export interface GpuEvidenceSource {
  readonly kind: string;
  collect(nonceHex: string): Promise<GpuEvidence | null>;
}

/** The source of machines without a CC-mode GPU (every local machine, CPU-only replicas). */
export const noGpu: GpuEvidenceSource = {
  kind: 'none',
  collect: () => Promise.resolve(null),
};

/**
 * Collects GPU evidence and applies the policy: a production replica whose configuration requires
 * a GPU refuses to go on without one (GPU_CC_REQUIRED); it never falls back to CPU-only.
 */
export async function requiredGpuEvidence(
  source: GpuEvidenceSource,
  nonceHex: string,
  required: boolean,
): Promise<GpuEvidence | null> {
  let evidence: GpuEvidence | null;
  try {
    evidence = await source.collect(nonceHex);
  } catch (cause) {
    if (!required) throw cause;
    const refusal = isTresorError(cause) ? cause.code : undefined;
    throw new TresorError(
      'GPU_CC_REQUIRED',
      `the ${source.kind} GPU evidence source failed${refusal === undefined ? '' : ` (${refusal})`}`,
      { cause, ...(refusal === undefined ? {} : { details: { refusal } }) },
    );
  }
  if (evidence === null && required) {
    throw new TresorError(
      'GPU_CC_REQUIRED',
      'the configuration requires a GPU in confidential-computing mode and none attested',
    );
  }
  return evidence;
}
