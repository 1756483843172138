import type { VerificationResult } from '../types.js';

/**
 * Composite evidence (CPU + GPU): a GPU report carries only the verifier's nonce, nothing a relying
 * party's key can be bound to, so the CPU TEE vouches for it. Before requesting its CPU report, the
 * workload lists `gpuEvidenceHash` of each GPU's evidence (SHA-256 of the raw SPDM bytes, see
 * nvidia/evidence-hash.ts) in its runtime data under GPU_EVIDENCE_MEMBER. The CPU report data binds
 * the runtime data (SHA-384 of JCS), so a verified CPU report transitively binds the exact GPU
 * evidence: evidence from another machine or another session cannot be swapped in.
 */
export const GPU_EVIDENCE_MEMBER = 'gpu-evidence-sha256';

const HASH = /^[0-9a-f]{64}$/;

/**
 * The `evidence_sha256` of each GPU in a verified NVIDIA result (one for a single report, one per
 * entry of a JSON list), or null when the claims do not state them.
 */
export function verifiedGpuEvidenceHashes(result: VerificationResult): readonly string[] | null {
  if (result.tee !== 'nvidia') return null;
  const claims = result.claims as { evidence_sha256?: unknown; gpus?: unknown } | null;
  if (claims === null || typeof claims !== 'object') return null;
  const gpus: unknown[] = Array.isArray(claims.gpus) ? claims.gpus : [claims];
  const hashes: string[] = [];
  for (const gpu of gpus) {
    const hash = (gpu as { evidence_sha256?: unknown } | null)?.evidence_sha256;
    if (typeof hash !== 'string' || !HASH.test(hash)) return null;
    hashes.push(hash);
  }
  return hashes.length === 0 ? null : hashes;
}

/** The hashes a runtime data object lists, or null when the member is absent or not a list of strings. */
export function listedGpuEvidenceHashes(runtimeData: unknown): readonly string[] | null {
  if (typeof runtimeData !== 'object' || runtimeData === null || Array.isArray(runtimeData)) return null;
  const listed = (runtimeData as Record<string, unknown>)[GPU_EVIDENCE_MEMBER];
  if (!Array.isArray(listed) || !listed.every((d): d is string => typeof d === 'string')) return null;
  return listed.map((d) => d.toLowerCase());
}
