import { bytesToHex } from '@tresor/crypto';
import { LittleEndianReader, requireEvidence } from './little-endian-reader.js';

/**
 * NVIDIA's use of the SPDM MEASUREMENTS OpaqueData field: a list of entries, each a u16 type, a u16
 * length and that many bytes (little-endian). SPDM leaves the field free-form; the types below are
 * NVIDIA's (nvtrust `OpaqueDataType`). The field is covered by the SPDM signature, so unknown types
 * are kept (future drivers add some) rather than refused.
 */
const FIELD_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'cert_issuer_name'],
  [2, 'cert_authority_key_identifier'],
  [3, 'driver_version'],
  [4, 'gpu_info'],
  [5, 'sku'],
  [6, 'vbios_version'],
  [7, 'manufacturer_id'],
  [8, 'tamper_detection'],
  [9, 'smc'],
  [10, 'vpr'],
  [11, 'nvdec0_status'],
  [12, 'msrscnt'],
  [13, 'cprinfo'],
  [14, 'board_id'],
  [15, 'chip_sku'],
  [16, 'chip_sku_mod'],
  [17, 'project'],
  [18, 'project_sku'],
  [19, 'project_sku_mod'],
  [20, 'fwid'],
  [21, 'protected_pcie_status'],
  [22, 'switch_pdi'],
  [23, 'floorswept_ports'],
  [24, 'position_id'],
  [25, 'lock_switch_status'],
  [32, 'gpu_link_conn'],
  [33, 'sys_enable_status'],
  [34, 'opaque_data_version'],
  [35, 'chip_info'],
  [36, 'feature_flag'],
]);

const DRIVER_VERSION = 3;
const VBIOS_VERSION = 6;
const BOARD_ID = 14;
const CHIP_SKU = 15;
const CHIP_SKU_MOD = 16;
const PROJECT = 17;
const PROJECT_SKU = 18;
const FWID = 20;

/** The VBIOS version field is 8 bytes b0..b7; NVIDIA prints it as b3.b2.b1.b0.b4 in hex. */
const VBIOS_VERSION_LENGTH = 8;

/** NVIDIA opaque data, decoded. Text fields are NUL-terminated ASCII in the evidence. */
export interface GpuOpaqueData {
  /** Every entry by type, in the order the GPU wrote them (each type at most once). */
  readonly fields: ReadonlyMap<number, Uint8Array>;
  readonly driverVersion?: string;
  /** As nvidia-smi prints it, e.g. `96.00.9f.00.01`. */
  readonly vbiosVersion?: string;
  readonly chipSku?: string;
  readonly chipSkuMod?: string;
  readonly project?: string;
  readonly projectSku?: string;
  /** Lowercase hex of the raw board id bytes. */
  readonly boardId?: string;
  /** Firmware id (SHA-384 of the GSP FMC); must equal the FWID in the leaf certificate. */
  readonly fwid?: Uint8Array;
}

/** Name of an opaque field type as nvtrust spells it, or `type_<n>` for types it does not list. */
export function opaqueFieldName(type: number): string {
  return FIELD_NAMES.get(type) ?? `type_${type}`;
}

export function parseGpuOpaqueData(bytes: Uint8Array): GpuOpaqueData {
  const reader = new LittleEndianReader(bytes);
  const fields = new Map<number, Uint8Array>();
  while (reader.remaining > 0) {
    const type = reader.u16('opaque data entry type');
    const length = reader.u16('opaque data entry length');
    const value = reader.bytes(length, `opaque data entry ${type}`);
    // A second entry of one type would let two readers of the same evidence disagree on its value.
    requireEvidence(!fields.has(type), `GPU evidence opaque data repeats field type ${type}`);
    fields.set(type, value);
  }
  const decoded = (type: number, decode: (value: Uint8Array) => string): string | undefined => {
    const value = fields.get(type);
    return value === undefined ? undefined : decode(value);
  };
  const text = (type: number): string | undefined =>
    decoded(type, (value) => nulTerminatedText(value, opaqueFieldName(type)));
  return {
    fields,
    ...optional('driverVersion', text(DRIVER_VERSION)),
    ...optional('vbiosVersion', decoded(VBIOS_VERSION, formatVbiosVersion)),
    ...optional('chipSku', text(CHIP_SKU)),
    ...optional('chipSkuMod', text(CHIP_SKU_MOD)),
    ...optional('project', text(PROJECT)),
    ...optional('projectSku', text(PROJECT_SKU)),
    ...optional('boardId', decoded(BOARD_ID, bytesToHex)),
    ...optional('fwid', fields.get(FWID)),
  };
}

function formatVbiosVersion(b: Uint8Array): string {
  requireEvidence(
    b.length === VBIOS_VERSION_LENGTH,
    `GPU evidence VBIOS version field has ${b.length} bytes, expected ${VBIOS_VERSION_LENGTH}`,
  );
  return [b[3]!, b[2]!, b[1]!, b[0]!, b[4]!].map((x) => x.toString(16).padStart(2, '0')).join('.');
}

/** Text up to the first NUL, which must be printable ASCII (driver versions, SKUs, project codes). */
function nulTerminatedText(value: Uint8Array, field: string): string {
  const end = value.indexOf(0);
  const text = value.subarray(0, end === -1 ? value.length : end);
  requireEvidence(
    text.every((c) => c >= 0x20 && c < 0x7f),
    `GPU evidence opaque field ${field} is not printable ASCII`,
  );
  return new TextDecoder().decode(text);
}

/** `{ key: value }`, or `{}` when the value is absent (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;
}
