import { bytesToHex } from '@tresor/crypto';
import type { SnpProduct } from './product.js';

/**
 * TCB_VERSION (SEV-SNP ABI spec, "TCB_VERSION Structure"): eight security patch levels (SPLs) in one
 * little-endian u64 whose byte layout depends on the product.
 * - Milan, Genoa: [0] boot loader, [1] TEE, [2..5] reserved, [6] SNP firmware, [7] microcode.
 * - Turin (Zen 5): [0] FMC, [1] boot loader, [2] TEE, [3] SNP firmware, [4..6] reserved, [7] microcode.
 * Reading a Turin TCB with the Milan layout would compare the wrong components, so the layout is
 * always chosen from the product, never guessed from the bytes.
 */
export interface SnpTcb {
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  /** Firmware (FMC) SPL: Turin and later only. */
  readonly fmc?: number;
}

export const TCB_SIZE = 8;

export function decodeTcb(raw: Uint8Array, product: SnpProduct): SnpTcb {
  if (product === 'Turin') {
    return { fmc: raw[0]!, bootloader: raw[1]!, tee: raw[2]!, snp: raw[3]!, microcode: raw[7]! };
  }
  return { bootloader: raw[0]!, tee: raw[1]!, snp: raw[6]!, microcode: raw[7]! };
}

/** Scratch space for `tcbRawHex` (JavaScript runs one call at a time; the hex string is the result). */
const mostSignificantFirst = new Uint8Array(TCB_SIZE);

/** The TCB as one u64 in hex (most significant byte first), as AMD tools and KDS print it. */
export function tcbRawHex(raw: Uint8Array): string {
  for (let i = 0; i < TCB_SIZE; i++) mostSignificantFirst[i] = raw[TCB_SIZE - 1 - i] ?? 0;
  return bytesToHex(mostSignificantFirst);
}

export type TcbComponent = 'fmc' | 'bootloader' | 'tee' | 'snp' | 'microcode';

/** The named components of `tcb`, in a fixed order, for comparisons and messages. */
export function tcbComponents(tcb: SnpTcb): [name: TcbComponent, value: number][] {
  const parts: [TcbComponent, number][] = [];
  if (tcb.fmc !== undefined) parts.push(['fmc', tcb.fmc]);
  parts.push(
    ['bootloader', tcb.bootloader],
    ['tee', tcb.tee],
    ['snp', tcb.snp],
    ['microcode', tcb.microcode],
  );
  return parts;
}
