import type { JWK } from 'jose';
import type { MeasuredWorkload } from '../reference-values/match-reference-values.js';

/**
 * What the mesh CA needs to know about a caller, taken from a verified attestation (an EAR token the
 * trust service issued, or the KBS session it was issued in), never from the request itself.
 */
export interface AttestedWorkload extends MeasuredWorkload {
  /** The TEE's public key bound into the evidence's report data (runtime data `tee-pubkey`). */
  readonly teePublicKey: JWK;
  /** Hardware ids for the residency inventory (for the sample TEE: its machine id). */
  readonly hardwareIds: readonly string[];
  /** The tenant the workload serves (from its attested init data), or null for a shared one. */
  readonly tenant: string | null;
}
