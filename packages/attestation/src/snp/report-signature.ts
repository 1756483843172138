import type { SignatureVerifier, VerificationKey } from '../signatures/index.js';
import { SNP_REPORT_SIZE, SNP_SIGNED_SIZE, type SnpReport } from './report.js';

/**
 * The report signature (SEV-SNP ABI spec, "ECDSA P-384 with SHA-384 Signature Format"): R at 0x2A0
 * and S at 0x2E8, each a little-endian integer zero-padded to 72 bytes, then 368 reserved bytes, over
 * SHA-384 of bytes 0x000..0x29F, verified as IEEE P1363 (r || s, 48 bytes each, big-endian).
 */
export const SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1;

const P384_SIZE = 48;
export const SIGNATURE_COMPONENT_SIZE = 72;
export const SIGNATURE_R_OFFSET = SNP_SIGNED_SIZE;
export const SIGNATURE_S_OFFSET = SIGNATURE_R_OFFSET + SIGNATURE_COMPONENT_SIZE;
const RESERVED_OFFSET = SIGNATURE_S_OFFSET + SIGNATURE_COMPONENT_SIZE;

/** True when `bytes[from..to)` are all zero. */
function zeroFrom(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Writes the 48-byte little-endian integer at `offset` big-endian into `out` at `at`. */
function bigEndian(bytes: Uint8Array, offset: number, out: Uint8Array, at: number): void {
  for (let i = 0; i < P384_SIZE; i++) out[at + i] = bytes[offset + P384_SIZE - 1 - i]!;
}

/**
 * r || s big-endian, or a reason the signature block is not a canonical P-384 signature. Bytes a
 * verifier would otherwise skip (the padding above 48 bytes, the reserved tail) must be zero, so no
 * bit of the report can change without failing verification.
 */
export function signatureP1363(report: SnpReport): Uint8Array<ArrayBuffer> | string {
  const b = report.bytes;
  if (!zeroFrom(b, SIGNATURE_R_OFFSET + P384_SIZE, SIGNATURE_R_OFFSET + SIGNATURE_COMPONENT_SIZE)) {
    return 'R has non-zero bytes above the 48 a P-384 integer uses';
  }
  if (!zeroFrom(b, SIGNATURE_S_OFFSET + P384_SIZE, SIGNATURE_S_OFFSET + SIGNATURE_COMPONENT_SIZE)) {
    return 'S has non-zero bytes above the 48 a P-384 integer uses';
  }
  if (!zeroFrom(b, RESERVED_OFFSET, SNP_REPORT_SIZE)) {
    return 'the reserved bytes after the signature are not zero';
  }
  const out = new Uint8Array(2 * P384_SIZE);
  bigEndian(b, SIGNATURE_R_OFFSET, out, 0);
  bigEndian(b, SIGNATURE_S_OFFSET, out, P384_SIZE);
  return out;
}

/** True when the report's signature verifies under `key` (ECDSA P-384 / SHA-384). Never throws. */
export function verifyReportSignature(
  report: SnpReport,
  key: VerificationKey,
  signature: Uint8Array,
  signatures: SignatureVerifier,
): Promise<boolean> {
  return signatures.verify(
    key,
    { name: 'ECDSA', hash: 'SHA-384', encoding: 'ieee-p1363' },
    signature,
    report.bytes.subarray(0, SNP_SIGNED_SIZE),
  );
}
