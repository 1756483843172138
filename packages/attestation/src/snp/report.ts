import { TresorError } from '@tresor/protocol';
import { TCB_SIZE } from './tcb.js';

/**
 * The SEV-SNP ATTESTATION_REPORT structure (SEV-SNP ABI spec, "ATTESTATION_REPORT Structure"), all
 * integers little-endian. Versions 3 and 4 add the CPUID fields at 0x188; version 5 adds the
 * mitigation vectors at 0x1F8. The signature covers bytes 0x000..0x29F.
 */
export const SNP_REPORT_SIZE = 0x4a0;
export const SNP_SIGNED_SIZE = 0x2a0;

const OFFSET = {
  version: 0x000,
  guestSvn: 0x004,
  policy: 0x008,
  familyId: 0x010,
  imageId: 0x020,
  vmpl: 0x030,
  signatureAlgo: 0x034,
  currentTcb: 0x038,
  platformInfo: 0x040,
  flags: 0x048,
  reportData: 0x050,
  measurement: 0x090,
  hostData: 0x0c0,
  idKeyDigest: 0x0e0,
  authorKeyDigest: 0x110,
  reportId: 0x140,
  reportIdMa: 0x160,
  reportedTcb: 0x180,
  cpuid: 0x188,
  chipId: 0x1a0,
  committedTcb: 0x1e0,
  currentFw: 0x1e8,
  committedFw: 0x1ec,
  launchTcb: 0x1f0,
  launchMitVector: 0x1f8,
  currentMitVector: 0x200,
} as const;

/** Report versions whose layout this parser knows: 2, 3 and 4 (same layout as 3), 5. */
const SUPPORTED_VERSIONS: readonly number[] = [2, 3, 4, 5];

/** SIGNING_KEY (flags bits 4:2): which key signed the report. 2-6 are reserved. */
export type SnpSigningKey = 'vcek' | 'vlek' | 'none';

export interface SnpFirmwareVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
}

export interface SnpCpuid {
  readonly family: number;
  readonly model: number;
  readonly stepping: number;
}

/**
 * A parsed SEV-SNP attestation report. Parsing checks structure only; nothing here is trusted until
 * verify() has checked the signature. Byte fields are views into `bytes`, the report's own copy.
 */
export interface SnpReport {
  /** The 1184 report bytes exactly as signed (a private copy). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: bigint;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly currentTcb: Uint8Array;
  readonly platformInfo: bigint;
  readonly flags: number;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: SnpSigningKey;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: Uint8Array;
  /** CPUID family/model/stepping: version 3 and later; null in version 2 (the bytes are zero there). */
  readonly cpuid: SnpCpuid | null;
  readonly chipId: Uint8Array;
  readonly committedTcb: Uint8Array;
  readonly currentFw: SnpFirmwareVersion;
  readonly committedFw: SnpFirmwareVersion;
  readonly launchTcb: Uint8Array;
  /** Mitigation vectors: version 5 and later; null before. */
  readonly launchMitVector: bigint | null;
  readonly currentMitVector: bigint | null;
}

function malformed(message: string): TresorError {
  return new TresorError('ATTESTATION_EVIDENCE_MALFORMED', `SEV-SNP report: ${message}`);
}

/**
 * Parses exactly one 1184-byte report. Refuses other sizes, unknown versions and the flag values the
 * ABI reserves (SIGNING_KEY 2-6, bits 31:5), so later steps never interpret a layout they do not know.
 */
export function parseSnpReportBytes(input: Uint8Array): SnpReport {
  if (input.length !== SNP_REPORT_SIZE) {
    throw malformed(`expected ${SNP_REPORT_SIZE} bytes, got ${input.length}`);
  }
  const bytes = input.slice();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (offset: number): number => view.getUint32(offset, true);
  const u64 = (offset: number): bigint => view.getBigUint64(offset, true);
  const field = (offset: number, size: number): Uint8Array => bytes.subarray(offset, offset + size);
  const firmware = (offset: number): SnpFirmwareVersion => ({
    build: bytes[offset]!,
    minor: bytes[offset + 1]!,
    major: bytes[offset + 2]!,
  });

  const version = u32(OFFSET.version);
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw malformed(`unsupported report version ${version} (supported: ${SUPPORTED_VERSIONS.join(', ')})`);
  }
  const flags = u32(OFFSET.flags);
  if (flags >>> 5 !== 0) throw malformed(`reserved flag bits are set (flags 0x${flags.toString(16)})`);
  const signingKeyCode = (flags >>> 2) & 7;
  const signingKey = signingKeyName(signingKeyCode);
  if (signingKey === undefined) throw malformed(`SIGNING_KEY value ${signingKeyCode} is reserved`);

  return {
    bytes,
    version,
    guestSvn: u32(OFFSET.guestSvn),
    policy: u64(OFFSET.policy),
    familyId: field(OFFSET.familyId, 16),
    imageId: field(OFFSET.imageId, 16),
    vmpl: u32(OFFSET.vmpl),
    signatureAlgo: u32(OFFSET.signatureAlgo),
    currentTcb: field(OFFSET.currentTcb, TCB_SIZE),
    platformInfo: u64(OFFSET.platformInfo),
    flags,
    authorKeyEn: (flags & 1) !== 0,
    maskChipKey: (flags & 2) !== 0,
    signingKey,
    reportData: field(OFFSET.reportData, 64),
    measurement: field(OFFSET.measurement, 48),
    hostData: field(OFFSET.hostData, 32),
    idKeyDigest: field(OFFSET.idKeyDigest, 48),
    authorKeyDigest: field(OFFSET.authorKeyDigest, 48),
    reportId: field(OFFSET.reportId, 32),
    reportIdMa: field(OFFSET.reportIdMa, 32),
    reportedTcb: field(OFFSET.reportedTcb, TCB_SIZE),
    cpuid:
      version >= 3
        ? {
            family: bytes[OFFSET.cpuid]!,
            model: bytes[OFFSET.cpuid + 1]!,
            stepping: bytes[OFFSET.cpuid + 2]!,
          }
        : null,
    chipId: field(OFFSET.chipId, 64),
    committedTcb: field(OFFSET.committedTcb, TCB_SIZE),
    currentFw: firmware(OFFSET.currentFw),
    committedFw: firmware(OFFSET.committedFw),
    launchTcb: field(OFFSET.launchTcb, TCB_SIZE),
    launchMitVector: version >= 5 ? u64(OFFSET.launchMitVector) : null,
    currentMitVector: version >= 5 ? u64(OFFSET.currentMitVector) : null,
  };
}

function signingKeyName(code: number): SnpSigningKey | undefined {
  if (code === 0) return 'vcek';
  if (code === 1) return 'vlek';
  if (code === 7) return 'none';
  return undefined;
}
