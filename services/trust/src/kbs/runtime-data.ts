import { createHash } from 'node:crypto';
import { bytesToHex, canonicalJson, runtimeDataHash } from '@tresor/crypto';
import type { TeePublicKeyJwk } from './tee-public-key.js';

/**
 * What the evidence must bind (KBS.md "Binding runtime data into report_data", Trustee backend.rs
 * `__attest`): not `runtime-data` as sent, but
 *
 *   primary (CPU) evidence:  {"tee-pubkey", "nonce", "additional-evidence": <the string, "" if none>}
 *   additional devices:      {"tee-pubkey", "nonce"}
 *
 * each serialised with RFC 8785 JCS and hashed with SHA-384 (every TEE but IBM SE), the digest
 * zero-padded to the TEE's 64-byte report data. Because the primary object contains the additional
 * evidence string itself, a verified CPU report binds the exact GPU evidence sent with it.
 */
export interface BoundRuntimeData {
  readonly 'additional-evidence': string;
  readonly nonce: string;
  readonly 'tee-pubkey': TeePublicKeyJwk;
}

export function primaryRuntimeData(
  teePubkey: TeePublicKeyJwk,
  nonce: string,
  additionalEvidence: string,
): BoundRuntimeData {
  return { 'additional-evidence': additionalEvidence, nonce, 'tee-pubkey': teePubkey };
}

/** The 64-byte report data a CPU TEE must carry for this runtime data. */
export function expectedReportData(runtimeData: BoundRuntimeData): Promise<Uint8Array> {
  return runtimeDataHash(runtimeData);
}

/** Length of the nonce an NVIDIA GPU signs (SPDM GET_MEASUREMENTS requester nonce). */
const GPU_NONCE_BYTES = 32;

/**
 * The nonce an additional device (a GPU) must have signed: SHA-384 of JCS({"nonce", "tee-pubkey"}),
 * cut to the 32-byte SPDM nonce field (KBS.md: device fields are zero-padded or truncated to size).
 * It makes GPU evidence as fresh as the session's challenge.
 */
export function additionalDeviceNonce(teePubkey: TeePublicKeyJwk, nonce: string): string {
  const text = canonicalJson({ nonce, 'tee-pubkey': teePubkey });
  const digest = createHash('sha384').update(text, 'utf8').digest();
  return bytesToHex(digest.subarray(0, GPU_NONCE_BYTES));
}
