import * as asn1js from 'asn1js';
import { bytesToHex } from '@tresor/crypto';
import type { Certificate } from '../certs.js';
import type { TcbComponent } from './tcb.js';

/**
 * AMD's X.509 extensions in VCEK and VLEK certificates (AMD "Versioned Chip Endorsement Key (VCEK)
 * Certificate and KDS Interface Specification", table "VCEK Certificate Extensions"), all under
 * 1.3.6.1.4.1.3704.1. SPLs are DER INTEGERs, names IA5Strings, and the hardware ID is the chip ID as
 * raw bytes with no DER wrapper (64 bytes; 8 on Turin).
 */
export const AMD_EXTENSION_ROOT = '1.3.6.1.4.1.3704.1';

export const AMD_OID = {
  structVersion: `${AMD_EXTENSION_ROOT}.1`,
  productName: `${AMD_EXTENSION_ROOT}.2`,
  bootloaderSpl: `${AMD_EXTENSION_ROOT}.3.1`,
  teeSpl: `${AMD_EXTENSION_ROOT}.3.2`,
  snpSpl: `${AMD_EXTENSION_ROOT}.3.3`,
  microcodeSpl: `${AMD_EXTENSION_ROOT}.3.8`,
  fmcSpl: `${AMD_EXTENSION_ROOT}.3.9`,
  hwId: `${AMD_EXTENSION_ROOT}.4`,
  cspId: `${AMD_EXTENSION_ROOT}.5`,
} as const;

/** The TCB a VCEK/VLEK was issued for; null where the certificate lacks or garbles the SPL. */
export type CertifiedTcb = Readonly<Record<TcbComponent, number | null>>;

export interface AmdKeyExtensions {
  /** Product name, e.g. `Milan-B0` (VCEK: product and stepping) or `Milan` (VLEK). */
  readonly productName: string | null;
  readonly tcb: CertifiedTcb;
  /** Hardware ID (chip ID) of a VCEK; null for a VLEK. */
  readonly hwId: Uint8Array | null;
  /** Cloud service provider a VLEK was issued to; null for a VCEK. */
  readonly cspId: string | null;
  /** Every AMD extension by OID, encoded as expected.json's `leaf_extensions`. */
  readonly all: Readonly<Record<string, number | string>>;
}

type DerValue = { kind: 'integer'; value: bigint } | { kind: 'string'; value: string };

/** One DER INTEGER or string, the whole input and nothing else; undefined for anything else. */
function decodeDer(bytes: Uint8Array): DerValue | undefined {
  const { offset, result } = asn1js.fromBER(bytes);
  if (offset !== bytes.length) return undefined;
  if (result instanceof asn1js.Integer) return { kind: 'integer', value: result.toBigInt() };
  if (result instanceof asn1js.IA5String || result instanceof asn1js.Utf8String) {
    return { kind: 'string', value: result.getValue() };
  }
  return undefined;
}

/** An SPL is one byte of TCB_VERSION: a DER INTEGER in 0..255. */
function spl(value: DerValue | undefined): number | null {
  return value?.kind === 'integer' && value.value >= 0n && value.value <= 255n ? Number(value.value) : null;
}

export function readAmdKeyExtensions(cert: Certificate): AmdKeyExtensions {
  const decoded = new Map<string, DerValue | undefined>();
  const all: Record<string, number | string> = {};
  let hwId: Uint8Array | null = null;
  for (const ext of cert.extensions) {
    if (!ext.type.startsWith(`${AMD_EXTENSION_ROOT}.`)) continue;
    const raw = new Uint8Array(ext.value);
    if (ext.type === AMD_OID.hwId) {
      // Trap: raw chip-ID bytes, not an OCTET STRING; DER-decoding them would misread the ID.
      hwId = raw;
      all[ext.type] = bytesToHex(raw);
      continue;
    }
    const value = decodeDer(raw);
    decoded.set(ext.type, value);
    if (value === undefined) all[ext.type] = bytesToHex(raw);
    else all[ext.type] = value.kind === 'integer' ? Number(value.value) : value.value;
  }
  const text = (oid: string): string | null => {
    const value = decoded.get(oid);
    return value?.kind === 'string' ? value.value : null;
  };
  return {
    productName: text(AMD_OID.productName),
    all: sortedByOid(all),
    tcb: {
      bootloader: spl(decoded.get(AMD_OID.bootloaderSpl)),
      tee: spl(decoded.get(AMD_OID.teeSpl)),
      snp: spl(decoded.get(AMD_OID.snpSpl)),
      microcode: spl(decoded.get(AMD_OID.microcodeSpl)),
      fmc: spl(decoded.get(AMD_OID.fmcSpl)),
    },
    hwId,
    cspId: text(AMD_OID.cspId),
  };
}

/** Orders OIDs arc by arc (…1.3.2 before …1.3.10), so output reads in the specification's order. */
function sortedByOid<T>(record: Record<string, T>): Record<string, T> {
  const arcs = (oid: string): number[] => oid.split('.').map(Number);
  const compare = (a: string, b: string): number => {
    const x = arcs(a);
    const y = arcs(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  };
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => compare(a, b)));
}
