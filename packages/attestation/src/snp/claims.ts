import { bytesToHex } from '@tresor/crypto';
// Table-driven (native `toHex` where the runtime has it): claims hex-encode ~1 KB per verification.
import type { Certificate } from '../certs.js';
import { commonName } from './names.js';
import {
  decodeGuestPolicy,
  decodePlatformInfo,
  hex64,
  type SnpGuestPolicy,
  type SnpPlatformInfo,
} from './policy.js';
import type { SnpProduct } from './product.js';
import { SIGNATURE_COMPONENT_SIZE, SIGNATURE_R_OFFSET, SIGNATURE_S_OFFSET } from './report-signature.js';
import type { SnpFirmwareVersion, SnpReport, SnpSigningKey } from './report.js';
import { decodeTcb, tcbRawHex } from './tcb.js';
import type { AmdKeyExtensions } from './vcek-extensions.js';

/**
 * SEV-SNP claims, named and encoded exactly as the `claims` of the test data's expected.json (and
 * `tresor attest verify --json`): byte strings as lowercase hex, 64-bit bit fields as `0x…`, small
 * integers as numbers. Added beyond expected.json: the newer policy bits, `platform_info_decoded`,
 * `fmc` in Turin TCBs and the version-5 mitigation vectors.
 */
export interface SnpTcbClaims {
  readonly bootloader?: number;
  readonly tee?: number;
  readonly snp?: number;
  readonly microcode?: number;
  /** Turin only. */
  readonly fmc?: number;
  /** The TCB_VERSION as a u64 in hex, most significant byte first. */
  readonly raw: string;
}

export interface SnpSignerCertificateClaims {
  readonly leaf_subject_cn: string | null;
  readonly leaf_issuer_cn: string | null;
  readonly leaf_not_before: string;
  readonly leaf_not_after: string;
  readonly leaf_extensions: Readonly<Record<string, number | string>>;
}

export interface SnpClaims {
  readonly report_size: number;
  readonly version: number;
  readonly guest_svn: number;
  readonly policy: SnpGuestPolicy;
  readonly family_id: string;
  readonly image_id: string;
  readonly vmpl: number;
  readonly signature_algo: number;
  readonly platform_info: string;
  readonly platform_info_decoded: SnpPlatformInfo;
  readonly flags: {
    readonly hex: string;
    readonly author_key_en: boolean;
    readonly mask_chip_key: boolean;
    readonly signing_key: SnpSigningKey;
  };
  readonly report_data: string;
  readonly measurement: string;
  readonly host_data: string;
  readonly id_key_digest: string;
  readonly author_key_digest: string;
  readonly report_id: string;
  readonly report_id_ma: string;
  readonly chip_id: string;
  /** The product the report was verified as; null when nothing names a known product. */
  readonly product: SnpProduct | null;
  readonly current_tcb: SnpTcbClaims;
  readonly reported_tcb: SnpTcbClaims;
  readonly committed_tcb: SnpTcbClaims;
  readonly launch_tcb: SnpTcbClaims;
  readonly current_fw: string;
  readonly committed_fw: string;
  /** Version 3 and later. */
  readonly cpuid?: { readonly family: string; readonly model: string; readonly stepping: string };
  /** Version 5 and later. */
  readonly launch_mit_vector?: string;
  readonly current_mit_vector?: string;
  readonly signature_r_le: string;
  readonly signature_s_le: string;
  readonly signer: SnpSigningKey;
  readonly signer_certificate: SnpSignerCertificateClaims;
}

function tcbClaims(raw: Uint8Array, product: SnpProduct | null): SnpTcbClaims {
  const hex = tcbRawHex(raw);
  // Without a product the byte layout is unknown: only the raw value is claimed.
  if (product === null) return { raw: hex };
  const { fmc, bootloader, tee, snp, microcode } = decodeTcb(raw, product);
  return fmc === undefined
    ? { bootloader, tee, snp, microcode, raw: hex }
    : { fmc, bootloader, tee, snp, microcode, raw: hex };
}

const firmware = (v: SnpFirmwareVersion): string => `${v.major}.${v.minor}.${v.build}`;
const hexByte = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** RFC 3339 with an explicit +00:00 offset, as expected.json writes certificate dates. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

/** Claims of the signer certificate alone: made once per cached chain (see ParsedEndorsements). */
export function signerCertificateClaims(
  leaf: Certificate,
  extensions: AmdKeyExtensions,
): SnpSignerCertificateClaims {
  return {
    leaf_subject_cn: commonName(leaf, 'subject'),
    leaf_issuer_cn: commonName(leaf, 'issuer'),
    leaf_not_before: rfc3339(leaf.notBefore),
    leaf_not_after: rfc3339(leaf.notAfter),
    leaf_extensions: extensions.all,
  };
}

export function snpClaims(
  report: SnpReport,
  product: SnpProduct | null,
  signer: SnpSignerCertificateClaims,
): SnpClaims {
  const b = report.bytes;
  return {
    report_size: b.length,
    version: report.version,
    guest_svn: report.guestSvn,
    policy: decodeGuestPolicy(report.policy),
    family_id: bytesToHex(report.familyId),
    image_id: bytesToHex(report.imageId),
    vmpl: report.vmpl,
    signature_algo: report.signatureAlgo,
    platform_info: hex64(report.platformInfo),
    platform_info_decoded: decodePlatformInfo(report.platformInfo),
    flags: {
      hex: `0x${report.flags.toString(16).padStart(8, '0')}`,
      author_key_en: report.authorKeyEn,
      mask_chip_key: report.maskChipKey,
      signing_key: report.signingKey,
    },
    report_data: bytesToHex(report.reportData),
    measurement: bytesToHex(report.measurement),
    host_data: bytesToHex(report.hostData),
    id_key_digest: bytesToHex(report.idKeyDigest),
    author_key_digest: bytesToHex(report.authorKeyDigest),
    report_id: bytesToHex(report.reportId),
    report_id_ma: bytesToHex(report.reportIdMa),
    chip_id: bytesToHex(report.chipId),
    product,
    current_tcb: tcbClaims(report.currentTcb, product),
    reported_tcb: tcbClaims(report.reportedTcb, product),
    committed_tcb: tcbClaims(report.committedTcb, product),
    launch_tcb: tcbClaims(report.launchTcb, product),
    current_fw: firmware(report.currentFw),
    committed_fw: firmware(report.committedFw),
    ...(report.cpuid === null
      ? {}
      : {
          cpuid: {
            family: hexByte(report.cpuid.family),
            model: hexByte(report.cpuid.model),
            stepping: hexByte(report.cpuid.stepping),
          },
        }),
    ...(report.launchMitVector === null || report.currentMitVector === null
      ? {}
      : {
          launch_mit_vector: hex64(report.launchMitVector),
          current_mit_vector: hex64(report.currentMitVector),
        }),
    signature_r_le: bytesToHex(b.subarray(SIGNATURE_R_OFFSET, SIGNATURE_R_OFFSET + SIGNATURE_COMPONENT_SIZE)),
    signature_s_le: bytesToHex(b.subarray(SIGNATURE_S_OFFSET, SIGNATURE_S_OFFSET + SIGNATURE_COMPONENT_SIZE)),
    signer: report.signingKey,
    // A copy per result, so a caller that edits its claims cannot change another result's.
    signer_certificate: { ...signer, leaf_extensions: { ...signer.leaf_extensions } },
  };
}
