import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { base64ToBytes, hexToBytes, utf8Decode, utf8Encode } from '@tresor/crypto';
import { SNP_REPORT_SIZE } from './report.js';

/**
 * The shapes SEV-SNP evidence arrives in, reduced to the 1184 report bytes:
 * - the raw report, as /dev/sev-guest and go-sev-guest write it;
 * - the same as hex text (virtee/sev test data);
 * - an Azure HCL report: a 32-byte `HCLA` header, the SNP report at 0x20, then IGVM request data
 *   with the runtime claims (Azure CVMs expose only this, through the vTPM);
 * - Trustee's az-snp-vtpm evidence JSON, whose `report` (byte array) or `hcl_report` (unpadded
 *   base64url) is such an HCL report and whose `vcek` is the signer certificate.
 */

/** Evidence files larger than this are refused before any decoding (the largest real one is ~40 KiB). */
export const MAX_SNP_EVIDENCE_SIZE = 1 << 20;

const HCL_MAGIC = [0x48, 0x43, 0x4c, 0x41]; // "HCLA"
const HCL_REPORT_OFFSET = 0x20;
/** IGVM_REQUEST_DATA follows the hardware report: data_size u32, version u32, report_type u32, ... */
const HCL_REQUEST_DATA_OFFSET = HCL_REPORT_OFFSET + SNP_REPORT_SIZE;
const HCL_REPORT_TYPE_OFFSET = HCL_REQUEST_DATA_OFFSET + 8;
/** IGVM report type 2 is SNP (4 is TDX, whose TDREPORT would be misread as an SNP report). */
const HCL_REPORT_TYPE_SNP = 2;

function malformed(message: string, cause?: unknown): TresorError {
  return new TresorError(
    'ATTESTATION_EVIDENCE_MALFORMED',
    `SEV-SNP evidence: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

export function isHclReport(bytes: Uint8Array): boolean {
  return HCL_MAGIC.every((b, i) => bytes[i] === b);
}

/** The SNP report inside an Azure HCL report (bytes 0x20..0x4BF). */
export function snpReportFromHclReport(hcl: Uint8Array): Uint8Array {
  if (!isHclReport(hcl)) throw malformed('not an HCL report (no HCLA magic)');
  if (hcl.length < HCL_REQUEST_DATA_OFFSET) {
    throw malformed(`HCL report of ${hcl.length} bytes is too short to hold an SNP report`);
  }
  if (hcl.length >= HCL_REPORT_TYPE_OFFSET + 4) {
    const view = new DataView(hcl.buffer, hcl.byteOffset, hcl.byteLength);
    const type = view.getUint32(HCL_REPORT_TYPE_OFFSET, true);
    if (type !== HCL_REPORT_TYPE_SNP) {
      throw malformed(
        `HCL report carries hardware report type ${type}, not SEV-SNP (${HCL_REPORT_TYPE_SNP})`,
      );
    }
  }
  return hcl.slice(HCL_REPORT_OFFSET, HCL_REQUEST_DATA_OFFSET);
}

const azSnpVtpmSchema = z
  .object({
    report: z.array(z.number().int().min(0).max(255)).optional(),
    hcl_report: z.string().optional(),
    vcek: z.string().optional(),
  })
  .refine((e) => (e.report === undefined) !== (e.hcl_report === undefined), {
    message: 'exactly one of "report" and "hcl_report" must be present',
  });

export interface AzSnpVtpmEvidence {
  /** The 1184-byte SNP report. */
  readonly report: Uint8Array;
  /** The whole HCL report it was cut from (runtime claims follow the SNP report). */
  readonly hclReport: Uint8Array;
  /** The VCEK the evidence carries (PEM text or DER bytes), or null. */
  readonly vcek: Uint8Array | null;
}

/** Reads Trustee's az-snp-vtpm evidence JSON (the vTPM quote in it is not verified here). */
export function readAzSnpVtpmEvidence(json: Uint8Array): AzSnpVtpmEvidence {
  if (json.length > MAX_SNP_EVIDENCE_SIZE)
    throw malformed(`evidence JSON larger than ${MAX_SNP_EVIDENCE_SIZE} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(json));
  } catch (cause) {
    throw malformed('evidence is not valid JSON', cause);
  }
  const parsed = azSnpVtpmSchema.safeParse(value);
  if (!parsed.success)
    throw malformed(`not az-snp-vtpm evidence: ${parsed.error.issues[0]?.message ?? 'shape'}`);
  const { report, hcl_report: hclText, vcek } = parsed.data;
  const hclReport =
    report !== undefined ? Uint8Array.from(report) : decodeBase64(hclText ?? '', 'hcl_report');
  return {
    report: snpReportFromHclReport(hclReport),
    hclReport,
    vcek:
      vcek === undefined ? null : vcek.includes('-----BEGIN') ? utf8Encode(vcek) : decodeBase64(vcek, 'vcek'),
  };
}

function decodeBase64(text: string, field: string): Uint8Array {
  try {
    return base64ToBytes(text);
  } catch (cause) {
    throw malformed(`"${field}" is not base64url`, cause);
  }
}

/**
 * The 1184 report bytes from any supported evidence shape. Detection is unambiguous: a raw report
 * starts with its version (2-5), an HCL report with `HCLA`, JSON with `{`, hex text with a hex digit.
 */
export function snpReportBytes(evidence: Uint8Array): Uint8Array {
  if (evidence.length > MAX_SNP_EVIDENCE_SIZE) {
    throw malformed(`evidence larger than ${MAX_SNP_EVIDENCE_SIZE} bytes`);
  }
  const binary = isHexText(evidence) ? decodeHexText(evidence) : evidence;
  if (isHclReport(binary)) return snpReportFromHclReport(binary);
  if (firstNonSpace(binary) === 0x7b /* { */) return readAzSnpVtpmEvidence(binary).report;
  if (binary.length !== SNP_REPORT_SIZE) {
    throw malformed(
      `expected a ${SNP_REPORT_SIZE}-byte report, its hex text, an HCL report or JSON; got ${binary.length} bytes`,
    );
  }
  return binary;
}

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

function isHexDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/** Hex text: hex digits and whitespace only, at least one digit. */
function isHexText(bytes: Uint8Array): boolean {
  let digits = 0;
  for (const b of bytes) {
    if (isHexDigit(b)) digits++;
    else if (!isWhitespace(b)) return false;
  }
  return digits > 0;
}

function decodeHexText(bytes: Uint8Array): Uint8Array {
  let text = '';
  for (const b of bytes) if (!isWhitespace(b)) text += String.fromCharCode(b);
  try {
    return hexToBytes(text);
  } catch (cause) {
    throw malformed('hex text has an odd number of digits', cause);
  }
}

function firstNonSpace(bytes: Uint8Array): number | undefined {
  for (const b of bytes) if (!isWhitespace(b)) return b;
  return undefined;
}
