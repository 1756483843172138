import { parseGpuOpaqueData, type GpuOpaqueData } from './opaque-data.js';
import { LittleEndianReader, requireEvidence } from './little-endian-reader.js';

/**
 * A Hopper GPU attestation report: one SPDM 1.1 GET_MEASUREMENTS request followed by the GPU's
 * MEASUREMENTS response (DMTF DSP0274 1.1, "GET_MEASUREMENTS request and MEASUREMENTS response
 * messages"). In SPDM 1.1 the responder signs the transcript of that exchange as it went over the
 * wire, so the signed bytes are simply everything from the request's first byte up to the signature;
 * anything after the signature (Trustee's captures add one 0x00) is reported and never trusted.
 */

/** SPDM 1.1. Later versions sign a different construction (1.2 adds a signing-context prefix). */
export const SPDM_VERSION_1_1 = 0x11;
const GET_MEASUREMENTS = 0xe0;
const MEASUREMENTS = 0x60;
/** Param1 bit 0: the requester asked for a signature (and so sent a nonce). */
const SIGNATURE_REQUESTED = 0x01;
const NONCE_LENGTH = 32;
/** A P-384 signature as SPDM carries it: r || s, 48 bytes each, big-endian. */
export const P384_SIGNATURE_LENGTH = 96;
/** MeasurementSpecification bit 0: the block uses the DMTF measurement layout. */
const DMTF_MEASUREMENT_SPECIFICATION = 0x01;
/** DMTFSpecMeasurementValueType (1) + DMTFSpecMeasurementValueSize (2). */
const DMTF_HEADER_LENGTH = 3;

export interface GetMeasurementsRequest {
  readonly version: number;
  readonly code: number;
  readonly param1: number;
  /** 0xFF: all measurement blocks. */
  readonly param2: number;
  /** The requester's nonce: the verifier's freshness challenge. */
  readonly nonce: Uint8Array;
  readonly slotId: number;
}

export interface MeasurementBlock {
  readonly index: number;
  readonly specification: number;
  /** DMTFSpecMeasurementValueType: bit 7 raw bit stream (else digest), bits 0-6 the component kind. */
  readonly dmtfType: number;
  /** The measurement value (a SHA-384 digest on Hopper). */
  readonly value: Uint8Array;
}

export interface MeasurementsResponse {
  readonly version: number;
  readonly code: number;
  readonly param1: number;
  readonly param2: number;
  readonly numberOfBlocks: number;
  readonly measurementRecordLength: number;
  /** In record order; indices are unique. */
  readonly blocks: readonly MeasurementBlock[];
  readonly responderNonce: Uint8Array;
  readonly opaqueDataLength: number;
  readonly opaqueData: GpuOpaqueData;
  /** ECDSA P-384 r || s. */
  readonly signature: Uint8Array;
}

export interface GpuAttestationReport {
  /** The evidence exactly as received (what `gpuEvidenceHash` hashes). */
  readonly bytes: Uint8Array;
  readonly request: GetMeasurementsRequest;
  readonly response: MeasurementsResponse;
  /** Request || response up to the signature: the message the GPU signed. */
  readonly signedBytes: Uint8Array;
  /** Bytes after the signature; not signed, not used. */
  readonly trailingBytes: number;
}

/** Parses a raw GPU attestation report; throws ATTESTATION_EVIDENCE_MALFORMED on any defect. */
export function parseGpuAttestationReport(bytes: Uint8Array): GpuAttestationReport {
  const reader = new LittleEndianReader(bytes);
  const request = readRequest(reader);
  const response = readResponse(reader, request);
  const signedLength = reader.offset;
  const signature = reader.bytes(P384_SIGNATURE_LENGTH, 'signature');
  return {
    bytes,
    request,
    response: { ...response, signature },
    signedBytes: bytes.subarray(0, signedLength),
    trailingBytes: reader.remaining,
  };
}

function readRequest(reader: LittleEndianReader): GetMeasurementsRequest {
  const version = reader.u8('request SPDMVersion');
  requireEvidence(
    version === SPDM_VERSION_1_1,
    `GPU evidence uses SPDM version 0x${hex2(version)}; only SPDM 1.1 (0x11, Hopper) is supported`,
  );
  const code = reader.u8('request code');
  requireEvidence(
    code === GET_MEASUREMENTS,
    `GPU evidence does not start with GET_MEASUREMENTS (0x${hex2(code)})`,
  );
  const param1 = reader.u8('request Param1');
  // Without a signature request the exchange carries neither nonce nor signature: nothing to verify.
  requireEvidence(
    (param1 & SIGNATURE_REQUESTED) !== 0,
    'GPU evidence is an unsigned GET_MEASUREMENTS exchange; collect it with a signature request',
  );
  const param2 = reader.u8('request Param2');
  const nonce = reader.bytes(NONCE_LENGTH, 'request nonce');
  const slotId = reader.u8('request SlotIDParam');
  return { version, code, param1, param2, nonce, slotId };
}

function readResponse(
  reader: LittleEndianReader,
  request: GetMeasurementsRequest,
): Omit<MeasurementsResponse, 'signature'> {
  const version = reader.u8('response SPDMVersion');
  requireEvidence(version === request.version, 'GPU evidence response SPDM version differs from the request');
  const code = reader.u8('response code');
  requireEvidence(code === MEASUREMENTS, `GPU evidence response is not MEASUREMENTS (0x${hex2(code)})`);
  const param1 = reader.u8('response Param1');
  const param2 = reader.u8('response Param2');
  const numberOfBlocks = reader.u8('NumberOfBlocks');
  const measurementRecordLength = reader.u24('MeasurementRecordLength');
  const blocks = readMeasurementRecord(
    reader.bytes(measurementRecordLength, 'MeasurementRecord'),
    numberOfBlocks,
  );
  const responderNonce = reader.bytes(NONCE_LENGTH, 'response nonce');
  const opaqueDataLength = reader.u16('OpaqueLength');
  const opaqueData = parseGpuOpaqueData(reader.bytes(opaqueDataLength, 'OpaqueData'));
  return {
    version,
    code,
    param1,
    param2,
    numberOfBlocks,
    measurementRecordLength,
    blocks,
    responderNonce,
    opaqueDataLength,
    opaqueData,
  };
}

/** The record must hold exactly `numberOfBlocks` blocks and nothing else. */
function readMeasurementRecord(record: Uint8Array, numberOfBlocks: number): MeasurementBlock[] {
  const reader = new LittleEndianReader(record);
  const blocks: MeasurementBlock[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < numberOfBlocks; i++) {
    const index = reader.u8('measurement block Index');
    const specification = reader.u8('measurement block MeasurementSpecification');
    requireEvidence(
      specification === DMTF_MEASUREMENT_SPECIFICATION,
      `GPU measurement block ${index} is not in the DMTF measurement layout`,
    );
    const size = reader.u16('measurement block MeasurementSize');
    const measurement = new LittleEndianReader(reader.bytes(size, `measurement block ${index}`));
    const dmtfType = measurement.u8('DMTFSpecMeasurementValueType');
    const valueSize = measurement.u16('DMTFSpecMeasurementValueSize');
    requireEvidence(
      valueSize + DMTF_HEADER_LENGTH === size,
      `GPU measurement block ${index} value size ${valueSize} does not fill its block of ${size} bytes`,
    );
    requireEvidence(!seen.has(index), `GPU evidence repeats measurement index ${index}`);
    seen.add(index);
    blocks.push({ index, specification, dmtfType, value: measurement.bytes(valueSize, 'measurement value') });
  }
  requireEvidence(
    reader.remaining === 0,
    `GPU measurement record has ${reader.remaining} bytes after its ${numberOfBlocks} blocks`,
  );
  return blocks;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
