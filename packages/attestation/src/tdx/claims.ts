import { bytesToHex } from '@tresor/crypto';
// Table-driven (native `toHex` where the runtime has it): claims hex-encode ~1 KB per verification.
import type { Certificate } from '../certs.js';
import { commonName, issuerCommonName } from './chain.js';
import type { TdxTcbInfo } from './collateral-schema.js';
import type { PckSgxExtension } from './pck-extension.js';
import type { TdxQuote } from './quote.js';
import { combineMatches, type TcbMatch, type TcbStatus } from './tcb-status.js';
import { decodeTdAttributes, type TdAttributes } from './td-report.js';

/**
 * TDX claims with exactly the names, nesting and encodings of `claims` in the testdata's
 * expected.json (lowercase hex strings, numbers, booleans), which `tresor attest verify --json`
 * prints and scripts rely on.
 */

export interface TdxHeaderClaims {
  readonly version: number;
  readonly att_key_type: number;
  /** `0x`-prefixed, 8 hex digits, e.g. "0x00000081". */
  readonly tee_type: string;
  readonly qe_svn: number;
  readonly pce_svn: number;
  readonly qe_vendor_id: string;
  readonly user_data: string;
}

export interface TdxLayoutClaims {
  readonly body_type: number;
  readonly body_offset: number;
  readonly body_size: number;
  readonly signed_length: number;
  readonly signature_data_length: number;
  readonly total_length: number;
  readonly trailing_bytes: number;
}

export interface TdxBodyClaims {
  readonly tee_tcb_svn: string;
  readonly mrseam: string;
  readonly mrsignerseam: string;
  readonly seam_attributes: string;
  readonly td_attributes: string;
  readonly xfam: string;
  readonly mrtd: string;
  readonly mrconfigid: string;
  readonly mrowner: string;
  readonly mrownerconfig: string;
  readonly rtmr0: string;
  readonly rtmr1: string;
  readonly rtmr2: string;
  readonly rtmr3: string;
  readonly report_data: string;
  readonly tee_tcb_svn2?: string;
  readonly mrservicetd?: string;
  readonly td_attributes_decoded: TdAttributes;
}

export interface TdxQeReportClaims {
  readonly cpusvn: string;
  readonly miscselect: number;
  readonly attributes: string;
  readonly mrenclave: string;
  readonly mrsigner: string;
  readonly isvprodid: number;
  readonly isvsvn: number;
  readonly report_data: string;
}

export interface TdxPckClaims {
  readonly fmspc: string;
  readonly pceid: string;
  readonly pcesvn: number;
  readonly cpusvn: string;
  readonly cpusvn_components: readonly number[];
  readonly subject_cn: string;
  readonly issuer_cn: string;
  /** RFC 3339 with an explicit offset, e.g. "2023-09-13T21:00:51+00:00". */
  readonly not_before: string;
  readonly not_after: string;
}

/** A TCB status, or `NoMatchingTcbLevel(<reason>)` when the collateral rates no level for this platform. */
export type TdxTcbStatusClaim = TcbStatus | `NoMatchingTcbLevel(${string})`;

export interface TdxTcbClaims {
  readonly platform_status: TdxTcbStatusClaim;
  readonly platform_advisory_ids: readonly string[];
  readonly qe_status: TdxTcbStatusClaim;
  readonly qe_advisory_ids: readonly string[];
  readonly status: TdxTcbStatusClaim;
  readonly advisory_ids: readonly string[];
  /** As the TCB info states it (Intel writes it in uppercase). */
  readonly tcb_info_fmspc: string;
  readonly tcb_info_issue_date: string;
  readonly tcb_info_next_update: string;
  readonly tcb_evaluation_data_number: number;
}

export interface TdxClaims {
  readonly header: TdxHeaderClaims;
  readonly layout: TdxLayoutClaims;
  readonly body: TdxBodyClaims;
  readonly qe_report: TdxQeReportClaims;
  readonly qe_auth_data: string;
  readonly attestation_key: string;
  readonly certification_data_types: readonly number[];
  /** Present when the quote's PCK certificate and its SGX extension are readable. */
  readonly pck?: TdxPckClaims;
  /** Present when collateral was supplied and its TCB info is readable. */
  readonly tcb?: TdxTcbClaims;
}

/** Claims read from the quote alone. */
export function quoteClaims(quote: TdxQuote): TdxClaims {
  const { header, layout, body, qeReport } = quote;
  const [rtmr0, rtmr1, rtmr2, rtmr3] = body.rtmrs;
  return {
    header: {
      version: header.version,
      att_key_type: header.attestationKeyType,
      tee_type: `0x${header.teeType.toString(16).padStart(8, '0')}`,
      qe_svn: header.qeSvn,
      pce_svn: header.pceSvn,
      qe_vendor_id: bytesToHex(header.qeVendorId),
      user_data: bytesToHex(header.userData),
    },
    layout: {
      body_type: layout.bodyType,
      body_offset: layout.bodyOffset,
      body_size: layout.bodySize,
      signed_length: layout.signedLength,
      signature_data_length: layout.signatureDataLength,
      total_length: layout.totalLength,
      trailing_bytes: layout.trailingBytes,
    },
    body: {
      tee_tcb_svn: bytesToHex(body.teeTcbSvn),
      mrseam: bytesToHex(body.mrSeam),
      mrsignerseam: bytesToHex(body.mrSignerSeam),
      seam_attributes: bytesToHex(body.seamAttributes),
      td_attributes: bytesToHex(body.tdAttributes),
      xfam: bytesToHex(body.xfam),
      mrtd: bytesToHex(body.mrTd),
      mrconfigid: bytesToHex(body.mrConfigId),
      mrowner: bytesToHex(body.mrOwner),
      mrownerconfig: bytesToHex(body.mrOwnerConfig),
      rtmr0: bytesToHex(rtmr0),
      rtmr1: bytesToHex(rtmr1),
      rtmr2: bytesToHex(rtmr2),
      rtmr3: bytesToHex(rtmr3),
      report_data: bytesToHex(body.reportData),
      ...(body.teeTcbSvn2 === undefined ? {} : { tee_tcb_svn2: bytesToHex(body.teeTcbSvn2) }),
      ...(body.mrServiceTd === undefined ? {} : { mrservicetd: bytesToHex(body.mrServiceTd) }),
      td_attributes_decoded: decodeTdAttributes(body.tdAttributes),
    },
    qe_report: {
      cpusvn: bytesToHex(qeReport.cpuSvn),
      miscselect: qeReport.miscSelect,
      attributes: bytesToHex(qeReport.attributes),
      mrenclave: bytesToHex(qeReport.mrEnclave),
      mrsigner: bytesToHex(qeReport.mrSigner),
      isvprodid: qeReport.isvProdId,
      isvsvn: qeReport.isvSvn,
      report_data: bytesToHex(qeReport.reportData),
    },
    qe_auth_data: bytesToHex(quote.qeAuthData),
    attestation_key: bytesToHex(quote.attestationKey),
    certification_data_types: [...quote.certificationDataTypes],
  };
}

/** Claims of the PCK certificate; `sgx` is its SGX extension. Made once per examined PCK chain. */
export function pckClaims(pck: Certificate, sgx: PckSgxExtension): TdxPckClaims {
  return {
    fmspc: bytesToHex(sgx.fmspc),
    pceid: bytesToHex(sgx.pceId),
    pcesvn: sgx.pceSvn,
    cpusvn: bytesToHex(sgx.cpuSvn),
    cpusvn_components: [...sgx.cpuSvnComponents],
    subject_cn: commonName(pck),
    issuer_cn: issuerCommonName(pck),
    not_before: rfc3339WithOffset(pck.notBefore),
    not_after: rfc3339WithOffset(pck.notAfter),
  };
}

/** The TCB claims; an unmatched platform decides the final status, as no QE rating can rescue it. */
export function tcbClaims(tcbInfo: TdxTcbInfo, platform: TcbMatch, qe: TcbMatch): TdxTcbClaims {
  const final = combineMatches(platform, qe);
  return {
    platform_status: statusClaim(platform),
    platform_advisory_ids: advisories(platform),
    qe_status: statusClaim(qe),
    qe_advisory_ids: advisories(qe),
    status: statusClaim(final),
    advisory_ids: advisories(final),
    tcb_info_fmspc: tcbInfo.fmspc,
    tcb_info_issue_date: tcbInfo.issueDate,
    tcb_info_next_update: tcbInfo.nextUpdate,
    tcb_evaluation_data_number: tcbInfo.tcbEvaluationDataNumber,
  };
}

function statusClaim(match: TcbMatch): TdxTcbStatusClaim {
  return match.matched ? match.rating.status : `NoMatchingTcbLevel(${match.reason})`;
}

function advisories(match: TcbMatch): readonly string[] {
  return match.matched ? match.rating.advisoryIds : [];
}

/** 2023-09-13T21:00:51.000Z → 2023-09-13T21:00:51+00:00 (X.509 times have whole seconds). */
function rfc3339WithOffset(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, '+00:00');
}
