import type { KbsAttester } from '@tresor/trust';
import type { GpuEvidenceSource } from './gpu-evidence.js';

/** The CPU TEE kinds a serving replica can attest as (packages/attestation verifier names). */
export type CpuTee = 'snp' | 'tdx' | 'sample';

/**
 * Where a replica's CPU evidence comes from: the kernel's configfs-tsm interface inside an SNP or
 * TDX guest, or the sample TEE in local mode. One interface, so the start-up sequence, the KBS
 * attester and the /attestation endpoint never ask which one they hold.
 */
export interface EvidenceSource {
  readonly tee: CpuTee;
  /** Fresh evidence whose report data is exactly `reportData` (64 bytes), as the raw bytes its verifier reads. */
  collect(reportData: Uint8Array): Promise<Uint8Array>;
  /** The same evidence as the KBS `primary_evidence` JSON value (docs/trust.md, "Messages"). */
  kbsEvidence(reportData: Uint8Array): Promise<unknown>;
}

/**
 * The KBS attester of a replica: its CPU evidence source and, when a GPU attests, the NVIDIA
 * evidence as `additional_evidence.nvidia` (the CPU report then binds it, docs/trust.md "Binding").
 */
export function evidenceAttester(source: EvidenceSource, gpu?: GpuEvidenceSource): KbsAttester {
  return {
    tee: source.tee,
    ...(gpu === undefined
      ? {}
      : {
          async additionalEvidence({ gpuNonce }: { readonly gpuNonce: string }) {
            const evidence = await gpu.collect(gpuNonce);
            return evidence === null ? {} : { nvidia: evidence.kbsEvidence };
          },
        }),
    primaryEvidence: ({ reportData }) => source.kbsEvidence(reportData),
  };
}
