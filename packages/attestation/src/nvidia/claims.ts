import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8Encode } from '@tresor/crypto';
import type { Certificate } from '../certs.js';
import type { GpuAttestationReport } from './attestation-report.js';
import { deviceIdentity, subjectString } from './device-chain.js';
import type { PublishedGpuEvidence } from './evidence.js';
import { gpuEvidenceHash } from './evidence-hash.js';
import { opaqueFieldName } from './opaque-data.js';

/**
 * Claims of one GPU, named and encoded exactly as testdata's expected.json spells them (lowercase
 * hex, `0x`-prefixed SPDM codes, numbers), followed by Tresor's additions (marked below).
 */
export interface GpuClaims {
  readonly evidence_length: number;
  readonly spdm_version: string;
  readonly request_code: string;
  readonly request_param1: string;
  readonly request_param2: string;
  /** The requester nonce: the verifier's freshness challenge. */
  readonly nonce: string;
  readonly slot_id: number;
  readonly response_code: string;
  readonly number_of_blocks: number;
  readonly measurement_record_length: number;
  /** How many measurement blocks were parsed (a count, despite the name). */
  readonly measurements_parsed: number;
  readonly nonzero_measurements: number;
  readonly responder_nonce: string;
  readonly opaque_data_length: number;
  readonly signature_length: number;
  readonly trailing_bytes_after_signature: number;
  readonly opaque_field_types: readonly number[];
  readonly driver_version?: string;
  readonly vbios_version?: string;
  readonly chip_sku?: string;
  readonly project?: string;
  readonly project_sku?: string;
  readonly chip_sku_mod?: string;
  readonly board_id?: string;
  readonly fwid?: string;
  /** SHA-256 of the concatenated lowercase hex text of all block values, by index (testdata's digest). */
  readonly measurements_sha256_of_concat: string;
  /** Block 2's value, or null when absent. */
  readonly measurement_2: string | null;
  readonly cert_chain_length: number;
  readonly leaf_subject: string;
  readonly leaf_not_after: string;
  /** Host-published, unsigned metadata (JSON list only). */
  readonly published_arch?: string;
  readonly published_driver_version?: string;
  readonly published_vbios_version?: string;
  /** Tresor: `gpuEvidenceHash` of this GPU's evidence, the value a CPU report binds. */
  readonly evidence_sha256: string;
  /** Tresor: the chip's stable identity (BROM certificate serialNumber), or null if absent. */
  readonly device_id: string | null;
  /** Tresor: every measurement block in record order. */
  readonly measurement_blocks: readonly {
    readonly index: number;
    readonly dmtf_type: number;
    readonly value: string;
  }[];
  /** Tresor: every opaque field as raw hex, keyed by nvtrust's field name. */
  readonly opaque_data: Readonly<Record<string, string>>;
}

/** Claims of a JSON evidence list, as expected.json nests them. */
export interface GpuListClaims {
  readonly gpus: readonly GpuClaims[];
  readonly gpu_count: number;
}

export type NvidiaClaims = GpuClaims | GpuListClaims;

export function gpuClaims(
  report: GpuAttestationReport,
  chain: readonly Certificate[],
  published?: PublishedGpuEvidence,
): GpuClaims {
  const { request, response } = report;
  const opaque = response.opaqueData;
  const blocks = [...response.blocks].sort((a, b) => a.index - b.index);
  const leaf = chain[0];
  const text = (key: string, value: string | undefined): Record<string, string> =>
    value === undefined ? {} : { [key]: value };
  return {
    evidence_length: report.bytes.length,
    spdm_version: code(request.version),
    request_code: code(request.code),
    request_param1: code(request.param1),
    request_param2: code(request.param2),
    nonce: bytesToHex(request.nonce),
    slot_id: request.slotId,
    response_code: code(response.code),
    number_of_blocks: response.numberOfBlocks,
    measurement_record_length: response.measurementRecordLength,
    measurements_parsed: response.blocks.length,
    // An empty value counts as measured, as in the testdata tool: only an all-zero digest means "unused".
    nonzero_measurements: response.blocks.filter((b) => b.value.length === 0 || b.value.some((x) => x !== 0))
      .length,
    responder_nonce: bytesToHex(response.responderNonce),
    opaque_data_length: response.opaqueDataLength,
    signature_length: response.signature.length,
    trailing_bytes_after_signature: report.trailingBytes,
    opaque_field_types: [...opaque.fields.keys()].sort((a, b) => a - b),
    ...text('driver_version', opaque.driverVersion),
    ...text('vbios_version', opaque.vbiosVersion),
    ...text('chip_sku', opaque.chipSku),
    ...text('project', opaque.project),
    ...text('project_sku', opaque.projectSku),
    ...text('chip_sku_mod', opaque.chipSkuMod),
    ...text('board_id', opaque.boardId),
    ...text('fwid', opaque.fwid === undefined ? undefined : bytesToHex(opaque.fwid)),
    measurements_sha256_of_concat: bytesToHex(
      sha256(utf8Encode(blocks.map((b) => bytesToHex(b.value)).join(''))),
    ),
    measurement_2: hexOrNull(response.blocks.find((b) => b.index === 2)?.value),
    cert_chain_length: chain.length,
    leaf_subject: leaf === undefined ? '' : subjectString(leaf),
    leaf_not_after: leaf === undefined ? '' : pythonIsoFormat(leaf.notAfter),
    ...text('published_arch', published?.arch),
    ...text('published_driver_version', published?.driverVersion),
    ...text('published_vbios_version', published?.vbiosVersion),
    evidence_sha256: gpuEvidenceHash(report.bytes),
    device_id: deviceIdentity(leaf) ?? null,
    measurement_blocks: response.blocks.map((b) => ({
      index: b.index,
      dmtf_type: b.dmtfType,
      value: bytesToHex(b.value),
    })),
    opaque_data: Object.fromEntries(
      [...opaque.fields].map(([type, value]) => [opaqueFieldName(type), bytesToHex(value)]),
    ),
  };
}

/** SPDM codes as `0x` + two lowercase hex digits. */
function code(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

function hexOrNull(value: Uint8Array | undefined): string | null {
  return value === undefined ? null : bytesToHex(value);
}

/** A UTC instant as Python's `datetime.isoformat()` prints it: `9999-12-31T23:59:59+00:00`. */
function pythonIsoFormat(date: Date): string {
  return date
    .toISOString()
    .replace(/\.(\d{3})Z$/, (_, ms: string) => (ms === '000' ? '+00:00' : `.${ms}000+00:00`));
}
