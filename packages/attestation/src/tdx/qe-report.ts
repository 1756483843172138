import { ByteReader } from './byte-reader.js';

/**
 * The quoting enclave's SGX report body (Intel SGX SDK `sgx_report_body_t`, 384 bytes), which the
 * PCK key signs. Its report data binds the attestation key that signs the quote.
 */

export const QE_REPORT_SIZE = 384;

export interface QeReport {
  /** All 384 bytes: the message the PCK signature covers. */
  readonly raw: Uint8Array;
  readonly cpuSvn: Uint8Array;
  readonly miscSelect: number;
  readonly attributes: Uint8Array;
  readonly mrEnclave: Uint8Array;
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly reportData: Uint8Array;
}

/** `raw` must be exactly QE_REPORT_SIZE bytes (the quote parser cuts it so). */
export function parseQeReport(raw: Uint8Array): QeReport {
  const r = new ByteReader(raw);
  const cpuSvn = r.bytes(16, 'QE CPUSVN');
  const miscSelect = r.u32('QE MISCSELECT');
  r.bytes(28, 'QE reserved');
  const attributes = r.bytes(16, 'QE ATTRIBUTES');
  const mrEnclave = r.bytes(32, 'QE MRENCLAVE');
  r.bytes(32, 'QE reserved');
  const mrSigner = r.bytes(32, 'QE MRSIGNER');
  r.bytes(96, 'QE reserved');
  const isvProdId = r.u16('QE ISVPRODID');
  const isvSvn = r.u16('QE ISVSVN');
  r.bytes(60, 'QE reserved');
  const reportData = r.bytes(64, 'QE REPORTDATA');
  return { raw, cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData };
}
