import { TresorError } from '@tresor/protocol';
import { hexToBytes } from '@tresor/crypto';
import { ByteReader } from './byte-reader.js';
import { parseQeReport, QE_REPORT_SIZE, type QeReport } from './qe-report.js';
import { parseTdReport, TD_REPORT_SIZE, type TdBodyType, type TdReport } from './td-report.js';

/**
 * Intel TDX quote, versions 4 and 5 (Intel TDX DCAP Quoting Library API, appendix "Quote Format":
 * header, TD quote body, then the quote signature data; v5 puts a body type/size descriptor before
 * the body). All integers are little-endian. Parsing follows the declared lengths: the signature
 * data may be followed by unsigned padding or text (many published quotes carry some), which is
 * counted in `trailingBytes` and otherwise ignored.
 */

/** Header `tee_type` of a TDX quote (0 would be an SGX enclave quote). */
export const TEE_TYPE_TDX = 0x81;
/** Header `att_key_type` 2: ECDSA-256-with-P-256 attestation key, the only kind Intel's QE uses for TDX. */
export const ATTESTATION_KEY_TYPE_ECDSA_P256 = 2;
/** Certification data type 6: QE report certification data (QE report + signature + auth data + nested data). */
export const CERT_DATA_QE_REPORT = 6;
/** Certification data type 5: the PCK certificate chain as concatenated PEM, leaf first. */
export const CERT_DATA_PCK_CHAIN = 5;

const HEADER_SIZE = 48;
const SIGNATURE_SIZE = 64;
const ATTESTATION_KEY_SIZE = 64;
/** Generously above any real quote (about 5 KiB with its PEM chain); bounds work on hostile input. */
export const MAX_QUOTE_BYTES = 1 << 20;

export interface TdxQuoteHeader {
  readonly version: 4 | 5;
  readonly attestationKeyType: number;
  readonly teeType: number;
  /** Reserved in TDX quotes (the QE SVN lives in the QE report); kept as read. */
  readonly qeSvn: number;
  readonly pceSvn: number;
  readonly qeVendorId: Uint8Array;
  readonly userData: Uint8Array;
}

export interface TdxQuoteLayout {
  readonly bodyType: TdBodyType;
  readonly bodyOffset: number;
  readonly bodySize: number;
  /** Header + (v5 descriptor +) body: the bytes the attestation key signs. */
  readonly signedLength: number;
  readonly signatureDataLength: number;
  readonly totalLength: number;
  readonly trailingBytes: number;
}

/** A structurally parsed TDX quote. Byte fields are views into `raw`; nothing here is verified yet. */
export interface TdxQuote {
  readonly raw: Uint8Array;
  readonly header: TdxQuoteHeader;
  readonly layout: TdxQuoteLayout;
  readonly body: TdReport;
  readonly signedRegion: Uint8Array;
  /** ECDSA P-256 signature r||s (big-endian) over `signedRegion`. */
  readonly quoteSignature: Uint8Array;
  /** Attestation public key x||y (big-endian, no 0x04 prefix). */
  readonly attestationKey: Uint8Array;
  readonly qeReport: QeReport;
  /** ECDSA P-256 signature r||s by the PCK key over `qeReport.raw`. */
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  /** [outer, nested] certification data types: always [6, 5] for a quote that parses. */
  readonly certificationDataTypes: readonly [number, number];
  /** The PEM PCK chain as carried by the quote (leaf, PCK Platform/Processor CA, root). */
  readonly pckChainPem: Uint8Array;
}

/**
 * Parses a TDX quote given as raw bytes or as hexadecimal text (optionally `0x`-prefixed or quoted,
 * as some tools print it). Throws ATTESTATION_EVIDENCE_MALFORMED for anything else.
 */
export function parseTdxQuote(evidence: Uint8Array): TdxQuote {
  const raw = decodeQuoteInput(evidence);
  const reader = new ByteReader(raw);
  const header = parseHeader(reader);

  let bodyType: TdBodyType = 2;
  if (header.version === 5) {
    // v5 adds a body descriptor (type u16, size u32); type 1 would be an SGX enclave report.
    const declaredType = reader.u16('body type');
    const declaredSize = reader.u32('body size');
    if (declaredType !== 2 && declaredType !== 3) {
      throw malformed(`body type ${declaredType} is not a TD report (2 = TDX 1.0, 3 = TDX 1.5)`);
    }
    bodyType = declaredType;
    if (declaredSize !== TD_REPORT_SIZE[bodyType]) {
      throw malformed(`body size ${declaredSize} does not match body type ${bodyType}`);
    }
  }
  const bodyOffset = reader.offset;
  const bodySize = TD_REPORT_SIZE[bodyType];
  const body = parseTdReport(reader.bytes(bodySize, 'TD report'), bodyType);
  const signedLength = reader.offset;

  const signatureDataLength = reader.u32('signature data length');
  const signatureData = new ByteReader(reader.bytes(signatureDataLength, 'signature data'));
  const quoteSignature = signatureData.bytes(SIGNATURE_SIZE, 'quote signature');
  const attestationKey = signatureData.bytes(ATTESTATION_KEY_SIZE, 'attestation key');
  const outerType = signatureData.u16('certification data type');
  const outerSize = signatureData.u32('certification data size');
  if (outerType !== CERT_DATA_QE_REPORT) {
    throw malformed(
      `certification data type ${outerType} is not supported; collect a quote with QE report certification data (type 6)`,
    );
  }
  const certification = new ByteReader(signatureData.bytes(outerSize, 'certification data'));
  const qeReport = parseQeReport(certification.bytes(QE_REPORT_SIZE, 'QE report'));
  const qeReportSignature = certification.bytes(SIGNATURE_SIZE, 'QE report signature');
  const qeAuthData = certification.bytes(certification.u16('QE auth data length'), 'QE auth data');
  const innerType = certification.u16('PCK certification data type');
  const innerSize = certification.u32('PCK certification data size');
  if (innerType !== CERT_DATA_PCK_CHAIN) {
    throw malformed(
      `nested certification data type ${innerType} is not supported; the quote must carry its PCK certificate chain (type 5)`,
    );
  }
  const pckChainPem = certification.bytes(innerSize, 'PCK certificate chain');
  // Inside the signature data the declared lengths must account for every byte: nothing unsigned
  // may hide between the parts (real quotes are exact; only padding after the whole is tolerated).
  if (certification.remaining !== 0 || signatureData.remaining !== 0) {
    throw malformed(
      `${certification.remaining + signatureData.remaining} bytes inside the signature data belong to no declared field`,
    );
  }

  return {
    raw,
    header,
    layout: {
      bodyType,
      bodyOffset,
      bodySize,
      signedLength,
      signatureDataLength,
      totalLength: raw.length,
      trailingBytes: reader.remaining,
    },
    body,
    signedRegion: raw.subarray(0, signedLength),
    quoteSignature,
    attestationKey,
    qeReport,
    qeReportSignature,
    qeAuthData,
    certificationDataTypes: [outerType, innerType],
    pckChainPem,
  };
}

function parseHeader(reader: ByteReader): TdxQuoteHeader {
  const header = new ByteReader(reader.bytes(HEADER_SIZE, 'quote header'));
  const version = header.u16('version');
  const attestationKeyType = header.u16('attestation key type');
  const teeType = header.u32('TEE type');
  if (version !== 4 && version !== 5) {
    throw malformed(`quote version ${version} is not supported (TDX quotes are version 4 or 5)`);
  }
  if (teeType !== TEE_TYPE_TDX) {
    throw malformed(`TEE type 0x${teeType.toString(16)} is not TDX (0x81); is this an SGX quote?`);
  }
  if (attestationKeyType !== ATTESTATION_KEY_TYPE_ECDSA_P256) {
    throw malformed(`attestation key type ${attestationKeyType} is not ECDSA P-256 (2)`);
  }
  return {
    version,
    attestationKeyType,
    teeType,
    qeSvn: header.u16('QE SVN'),
    pceSvn: header.u16('PCE SVN'),
    qeVendorId: header.bytes(16, 'QE vendor id'),
    userData: header.bytes(20, 'user data'),
  };
}

/**
 * Raw quotes start with the version (0x04 or 0x05), never a printable character, so text input is
 * recognised unambiguously and decoded as hex.
 */
function decodeQuoteInput(evidence: Uint8Array): Uint8Array {
  if (evidence.length > 2 * MAX_QUOTE_BYTES + 16) {
    throw malformed(`the input has ${evidence.length} bytes, more than any TDX quote`);
  }
  const first = evidence[0];
  if (first === undefined) throw malformed('the input is empty');
  if (first < 0x20 || first > 0x7e) {
    if (evidence.length > MAX_QUOTE_BYTES)
      throw malformed(`the quote has more than ${MAX_QUOTE_BYTES} bytes`);
    return evidence;
  }
  let text = new TextDecoder('latin1').decode(evidence).trim();
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) text = text.slice(1, -1).trim();
  if (text.startsWith('0x') || text.startsWith('0X')) text = text.slice(2);
  text = text.replace(/\s+/g, '');
  if (text.length === 0 || text.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(text)) {
    throw malformed('the input is neither a binary TDX quote nor hexadecimal text');
  }
  return hexToBytes(text);
}

function malformed(what: string): TresorError {
  return new TresorError('ATTESTATION_EVIDENCE_MALFORMED', `the TDX quote is malformed: ${what}`);
}
