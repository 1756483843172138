/**
 * Bit fields of the report (SEV-SNP ABI spec: "Guest Policy Structure" and the PLATFORM_INFO field
 * of ATTESTATION_REPORT). The guest policy is fixed at launch and enforced by the firmware; the
 * verifier only reports it, appraisal decides (DEBUG above all: the host can read a debug guest).
 */

export interface SnpGuestPolicy {
  readonly hex: string;
  readonly abi_minor: number;
  readonly abi_major: number;
  /** Bit 16: the guest may run with SMT enabled. */
  readonly smt_allowed: boolean;
  /** Bit 17: reserved, must be 1. */
  readonly reserved_bit17: boolean;
  /** Bit 18: a migration agent may be associated with the guest. */
  readonly migrate_ma: boolean;
  /** Bit 19: the host may debug (read and write) the guest's memory. */
  readonly debug: boolean;
  /** Bit 20: the guest may run on one socket only. */
  readonly single_socket: boolean;
  /** Bit 21: CXL may be populated with guest memory. */
  readonly cxl_allowed: boolean;
  /** Bit 22: AES-256-XTS is required for memory encryption. */
  readonly mem_aes_256_xts: boolean;
  /** Bit 23: running requires RAPL to be disabled. */
  readonly rapl_dis: boolean;
  /** Bit 24: running requires ciphertext hiding to be enabled. */
  readonly ciphertext_hiding: boolean;
  /** Bit 25: guest support for SNP_PAGE_MOVE / page swap is disabled. */
  readonly page_swap_disable: boolean;
}

/** Every bit decoded here is in the low 32, so they are tested on a number (BigInt shifts are slow). */
const low32 = (value: bigint): number => Number(BigInt.asUintN(32, value));
const bit = (low: number, n: number): boolean => ((low >>> n) & 1) === 1;

export function hex64(value: bigint): string {
  return `0x${value.toString(16).padStart(16, '0')}`;
}

export function decodeGuestPolicy(policy: bigint): SnpGuestPolicy {
  const low = low32(policy);
  return {
    hex: hex64(policy),
    abi_minor: low & 0xff,
    abi_major: (low >>> 8) & 0xff,
    smt_allowed: bit(low, 16),
    reserved_bit17: bit(low, 17),
    migrate_ma: bit(low, 18),
    debug: bit(low, 19),
    single_socket: bit(low, 20),
    cxl_allowed: bit(low, 21),
    mem_aes_256_xts: bit(low, 22),
    rapl_dis: bit(low, 23),
    ciphertext_hiding: bit(low, 24),
    page_swap_disable: bit(low, 25),
  };
}

/** PLATFORM_INFO: the platform's state when the report was made. */
export interface SnpPlatformInfo {
  readonly smt_enabled: boolean;
  readonly tsme_enabled: boolean;
  readonly ecc_enabled: boolean;
  readonly rapl_disabled: boolean;
  readonly ciphertext_hiding_enabled: boolean;
  readonly alias_check_complete: boolean;
}

export function decodePlatformInfo(info: bigint): SnpPlatformInfo {
  const low = low32(info);
  return {
    smt_enabled: bit(low, 0),
    tsme_enabled: bit(low, 1),
    ecc_enabled: bit(low, 2),
    rapl_disabled: bit(low, 3),
    ciphertext_hiding_enabled: bit(low, 4),
    alias_check_complete: bit(low, 5),
  };
}
