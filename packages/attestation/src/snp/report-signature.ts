import { equalBytes } from '@tresor/crypto';
import { SNP_REPORT_SIZE, SNP_SIGNED_SIZE, type SnpReport } from './report.js';

/**
 * The report signature (SEV-SNP ABI spec, "ECDSA P-384 with SHA-384 Signature Format"): R at 0x2A0
 * and S at 0x2E8, each a little-endian integer zero-padded to 72 bytes, then 368 reserved bytes, over
 * SHA-384 of bytes 0x000..0x29F. WebCrypto wants IEEE P1363 (r || s, 48 bytes each, big-endian).
 */
export const SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1;

const P384_SIZE = 48;
export const SIGNATURE_COMPONENT_SIZE = 72;
export const SIGNATURE_R_OFFSET = SNP_SIGNED_SIZE;
export const SIGNATURE_S_OFFSET = SIGNATURE_R_OFFSET + SIGNATURE_COMPONENT_SIZE;
const RESERVED_OFFSET = SIGNATURE_S_OFFSET + SIGNATURE_COMPONENT_SIZE;

const zeros = new Uint8Array(SNP_REPORT_SIZE - RESERVED_OFFSET);

/**
 * r || s big-endian, or a reason the signature block is not a canonical P-384 signature. Bytes a
 * verifier would otherwise skip (the padding above 48 bytes, the reserved tail) must be zero, so no
 * bit of the report can change without failing verification.
 */
export function signatureP1363(report: SnpReport): Uint8Array<ArrayBuffer> | string {
  const b = report.bytes;
  const padding = (offset: number): Uint8Array =>
    b.subarray(offset + P384_SIZE, offset + SIGNATURE_COMPONENT_SIZE);
  if (!equalBytes(padding(SIGNATURE_R_OFFSET), zeros.subarray(0, SIGNATURE_COMPONENT_SIZE - P384_SIZE))) {
    return 'R has non-zero bytes above the 48 a P-384 integer uses';
  }
  if (!equalBytes(padding(SIGNATURE_S_OFFSET), zeros.subarray(0, SIGNATURE_COMPONENT_SIZE - P384_SIZE))) {
    return 'S has non-zero bytes above the 48 a P-384 integer uses';
  }
  if (!equalBytes(b.subarray(RESERVED_OFFSET, SNP_REPORT_SIZE), zeros)) {
    return 'the reserved bytes after the signature are not zero';
  }
  const out = new Uint8Array(2 * P384_SIZE);
  out.set(
    b
      .subarray(SIGNATURE_R_OFFSET, SIGNATURE_R_OFFSET + P384_SIZE)
      .slice()
      .reverse(),
    0,
  );
  out.set(
    b
      .subarray(SIGNATURE_S_OFFSET, SIGNATURE_S_OFFSET + P384_SIZE)
      .slice()
      .reverse(),
    P384_SIZE,
  );
  return out;
}

/** True when the report's signature verifies under `key` (ECDSA P-384 / SHA-384). Never throws. */
export async function verifyReportSignature(
  report: SnpReport,
  key: CryptoKey,
  signature: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  try {
    return await crypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-384' },
      key,
      signature,
      report.bytes.subarray(0, SNP_SIGNED_SIZE),
    );
  } catch {
    return false;
  }
}
