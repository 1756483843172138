import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@tresor/crypto';
import type { NvidiaEvidence } from './evidence.js';

/**
 * The value a CPU report's runtime data carries to bind one GPU's evidence to it: lowercase hex
 * SHA-256 of the raw SPDM evidence bytes as the GPU produced them (GET_MEASUREMENTS request ||
 * MEASUREMENTS response, including any trailing bytes), i.e. after hex or base64 transport
 * decoding and before any parsing. For several GPUs, one hash per GPU, in evidence order.
 */
export function gpuEvidenceHash(evidenceBytes: Uint8Array): string {
  return bytesToHex(sha256(evidenceBytes));
}

/** `gpuEvidenceHash` of each GPU's evidence, in order. */
export function gpuEvidenceHashes(evidence: NvidiaEvidence): string[] {
  const reports = evidence.kind === 'report' ? [evidence.report] : evidence.gpus.map((g) => g.report);
  return reports.map((r) => gpuEvidenceHash(r.bytes));
}
