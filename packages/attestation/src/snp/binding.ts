import { bytesToHex, equalBytes } from '@tresor/crypto';
import type { CheckResult } from '../types.js';
import type { SnpProduct } from './product.js';
import type { SnpReport } from './report.js';
import { decodeTcb, tcbComponents } from './tcb.js';
import type { AmdKeyExtensions } from './vcek-extensions.js';

/**
 * The binding between the signing certificate and the report: AMD KDS issues a VCEK per chip and per
 * TCB, so the certificate's SPL extensions must equal the report's REPORTED_TCB (not CURRENT_TCB,
 * which can be newer than the TCB the host asked the VCEK for) and its hwID must equal CHIP_ID.
 */

export function checkCertTcb(
  report: SnpReport,
  product: SnpProduct | null,
  ext: AmdKeyExtensions,
): CheckResult {
  if (product === null) {
    return {
      ok: false,
      code: 'ATTESTATION_TCB_MISMATCH',
      detail: 'the TCB layout is unknown without a product',
    };
  }
  const reported = decodeTcb(report.reportedTcb, product);
  const differences: string[] = [];
  for (const [name, value] of tcbComponents(reported)) {
    const inCert = ext.tcb[name];
    if (inCert !== value)
      differences.push(`${name} ${inCert ?? 'missing'} in the certificate, ${value} reported`);
  }
  return differences.length === 0
    ? { ok: true, detail: 'certificate SPLs equal the reported TCB' }
    : { ok: false, code: 'ATTESTATION_TCB_MISMATCH', detail: differences.join('; ') };
}

/** Turin VCEKs carry an 8-byte hwID: the first 8 bytes of CHIP_ID (AMD KDS, Turin VCEK URL). */
const TURIN_HWID_SIZE = 8;

export function checkCertHwId(
  report: SnpReport,
  product: SnpProduct | null,
  ext: AmdKeyExtensions,
): CheckResult {
  const fail = (detail: string): CheckResult => ({ ok: false, code: 'ATTESTATION_CHIP_ID_MISMATCH', detail });
  if (ext.hwId === null) return fail('the VCEK has no hardware ID extension (1.3.6.1.4.1.3704.1.4)');
  const chipId = product === 'Turin' ? report.chipId.subarray(0, TURIN_HWID_SIZE) : report.chipId;
  if (report.maskChipKey && report.chipId.every((b) => b === 0)) {
    // MASK_CHIP_KEY zeroes CHIP_ID; the VCEK (unique per chip) still names the chip in its hwID.
    return { ok: true, detail: `CHIP_ID is masked; the VCEK names chip ${bytesToHex(ext.hwId)}` };
  }
  if (!equalBytes(ext.hwId, chipId)) {
    return fail(
      `the VCEK is for chip ${bytesToHex(ext.hwId)}, the report is from chip ${bytesToHex(chipId)}`,
    );
  }
  return { ok: true, detail: 'VCEK hardware ID equals CHIP_ID' };
}
