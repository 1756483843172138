import { bytesToHex } from '@tresor/crypto';
import type { AppraisalInput } from '../types.js';
import type { TdxClaims } from './claims.js';
import type { PckSgxExtension } from './pck-extension.js';
import type { TdxQuote } from './quote.js';

/**
 * The TEE-independent view of a verified TDX quote for the appraisal policy. Measurements are the
 * TD's launch and runtime registers plus the TDX module's MRSEAM; the hardware id for the
 * residency inventory is the PPID from the PCK certificate (one per CPU package; FMSPC only names a
 * platform model, so it is never used as an identity); the TCB facts are the collateral status
 * (when collateral was given) and the SVNs a minimum-TCB rule can compare.
 */
export function tdxAppraisalInput(
  quote: TdxQuote,
  claims: TdxClaims,
  sgx: PckSgxExtension | undefined,
): AppraisalInput {
  const b = claims.body;
  const attributes = b.td_attributes_decoded;
  const tcb: Record<string, number | string | readonly string[]> = {
    tee_tcb_svn: b.tee_tcb_svn,
    tdx_module_svn: quote.body.teeTcbSvn[0] ?? 0,
    tdx_module_major: quote.body.teeTcbSvn[1] ?? 0,
    qe_isvsvn: quote.qeReport.isvSvn,
  };
  if (sgx !== undefined) {
    tcb.pcesvn = sgx.pceSvn;
    tcb.fmspc = bytesToHex(sgx.fmspc);
  }
  if (claims.tcb !== undefined) {
    tcb.status = claims.tcb.status;
    tcb.advisoryIds = claims.tcb.advisory_ids;
    tcb.tcb_evaluation_data_number = claims.tcb.tcb_evaluation_data_number;
  }
  return {
    tee: 'tdx',
    insecure: false,
    debug: attributes.debug,
    measurements: {
      mrtd: b.mrtd,
      rtmr0: b.rtmr0,
      rtmr1: b.rtmr1,
      rtmr2: b.rtmr2,
      rtmr3: b.rtmr3,
      mrconfigid: b.mrconfigid,
      mrowner: b.mrowner,
      mrownerconfig: b.mrownerconfig,
      mrseam: b.mrseam,
      ...(b.mrservicetd === undefined ? {} : { mrservicetd: b.mrservicetd }),
    },
    reportData: b.report_data,
    hardwareIds: sgx === undefined ? [] : [bytesToHex(sgx.ppid)],
    tcb,
    vmpl: null,
    nonce: null,
    flags: {
      sept_ve_disable: attributes.sept_ve_disable,
      pks: attributes.pks,
      kl: attributes.kl,
      perfmon: attributes.perfmon,
    },
  };
}
