import { ByteReader } from './byte-reader.js';

/**
 * The TD report carried as the quote body (Intel TDX DCAP Quoting Library API, "TD Quote Body";
 * the v5 quote format adds the TDX 1.5 body). Type 2 is the TDX 1.0 body (584 bytes); type 3, TDX 1.5,
 * appends TEE_TCB_SVN_2 and MRSERVICETD (648 bytes).
 */

export type TdBodyType = 2 | 3;

export const TD_REPORT_SIZE: Readonly<Record<TdBodyType, number>> = { 2: 584, 3: 648 };

export interface TdReport {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
  /** TDATTRIBUTES, a little-endian 64-bit bit field (see `decodeTdAttributes`). */
  readonly tdAttributes: Uint8Array;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  readonly reportData: Uint8Array;
  /** TDX 1.5 (body type 3) only. */
  readonly teeTcbSvn2?: Uint8Array;
  /** TDX 1.5 (body type 3) only. */
  readonly mrServiceTd?: Uint8Array;
}

/** `body` must be exactly TD_REPORT_SIZE[type] bytes (the quote parser cuts it so). */
export function parseTdReport(body: Uint8Array, type: TdBodyType): TdReport {
  const r = new ByteReader(body);
  const report = {
    teeTcbSvn: r.bytes(16, 'TEE_TCB_SVN'),
    mrSeam: r.bytes(48, 'MRSEAM'),
    mrSignerSeam: r.bytes(48, 'MRSIGNERSEAM'),
    seamAttributes: r.bytes(8, 'SEAMATTRIBUTES'),
    tdAttributes: r.bytes(8, 'TDATTRIBUTES'),
    xfam: r.bytes(8, 'XFAM'),
    mrTd: r.bytes(48, 'MRTD'),
    mrConfigId: r.bytes(48, 'MRCONFIGID'),
    mrOwner: r.bytes(48, 'MROWNER'),
    mrOwnerConfig: r.bytes(48, 'MROWNERCONFIG'),
    rtmrs: [r.bytes(48, 'RTMR0'), r.bytes(48, 'RTMR1'), r.bytes(48, 'RTMR2'), r.bytes(48, 'RTMR3')] as const,
    reportData: r.bytes(64, 'REPORTDATA'),
  };
  if (type === 2) return report;
  return { ...report, teeTcbSvn2: r.bytes(16, 'TEE_TCB_SVN_2'), mrServiceTd: r.bytes(48, 'MRSERVICETD') };
}

export interface TdAttributes {
  readonly debug: boolean;
  readonly sept_ve_disable: boolean;
  readonly pks: boolean;
  readonly kl: boolean;
  readonly perfmon: boolean;
}

/**
 * TDATTRIBUTES bits (Intel TDX Module ABI spec, table "TD Attributes Definition"): 0 DEBUG (the host
 * VMM may read and write TD memory and registers), 28 SEPT_VE_DISABLE, 30 PKS, 31 KL, 63 PERFMON.
 */
export function decodeTdAttributes(tdAttributes: Uint8Array): TdAttributes {
  const bit = (n: number): boolean => ((tdAttributes[n >> 3] ?? 0) & (1 << (n & 7))) !== 0;
  return { debug: bit(0), sept_ve_disable: bit(28), pks: bit(30), kl: bit(31), perfmon: bit(63) };
}
