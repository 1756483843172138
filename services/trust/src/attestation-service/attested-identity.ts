import type { EarStatus, TeeKind } from '@tresor/attestation';
import type { TeePublicKeyJwk } from '../kbs/tee-public-key.js';

/**
 * What the trust service knows about an attested workload once its evidence was accepted: the typed
 * view of an attestation token's claims. Resource policy (Cedar), the mesh CA and the audit log work
 * on this, never on raw evidence or raw token claims.
 */
export interface AttestedGpu {
  readonly status: EarStatus;
  /** The GPU's stable identity (device certificate serial), or null. */
  readonly deviceId: string | null;
}

export interface AttestedIdentity {
  /** The token id (`jti`); also the Cedar principal id. */
  readonly tokenId: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** The overall EAR status (the worst submodule's). */
  readonly status: EarStatus;
  /** The CPU TEE kind. */
  readonly tee: TeeKind;
  /** True for the sample TEE: no hardware protects it. */
  readonly insecure: boolean;
  readonly debug: boolean;
  /** The CPU TEE's named measurements (AppraisalInput.measurements), lowercase hex. */
  readonly measurements: Readonly<Record<string, string>>;
  /** Every hardware id (CPU chip/platform, GPUs, the sample installation), lowercase hex. */
  readonly hardwareIds: readonly string[];
  /** The jurisdiction of the residency inventory all hardware is in, or null when not checked. */
  readonly residency: string | null;
  readonly initDataHash: string | null;
  readonly tenant: string | null;
  readonly imageDigest: string | null;
  /** The released component and release the measurements match, or null when not checked. */
  readonly component: string | null;
  readonly release: string | null;
  readonly gpus: readonly AttestedGpu[];
  /** The key bound into the evidence: secrets are wrapped to it, mesh certificates certify it. */
  readonly teePublicKey: TeePublicKeyJwk;
}
