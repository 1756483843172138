import { TresorError } from '@tresor/protocol';
import type { TeeKind } from './types.js';

/**
 * Recognises the TEE kind of an evidence file, so `tresor attest verify` can be called without
 * `--tee`. Every shape the verifiers parse is recognised from its first bytes (a structure header,
 * a magic, or the JSON members), whether the file is raw binary or hex text:
 *
 * | TEE    | raw / hex text                                                     | JSON                         |
 * |--------|--------------------------------------------------------------------|------------------------------|
 * | snp    | 1184 bytes, version 2-5 (u32 LE), signature_algo 1 at 0x34; `HCLA` | `report` / `hcl_report` (az-snp-vtpm) |
 * | tdx    | quote header: version 4/5 (u16 LE), key type 2, TEE type 0x81      |                              |
 * | nvidia | SPDM 1.x GET_MEASUREMENTS request: version 0x1_, code 0xE0         | a list (`[`) of GPU evidence |
 * | sample |                                                                    | `svn` and `report_data`      |
 *
 * Recognition only picks the verifier; the verifier's own parser then checks the whole structure.
 */

/** The largest evidence file read (the 8-GPU NVIDIA list is ~120 KiB). */
export const MAX_EVIDENCE_FILE_SIZE = 4 << 20;

const SNP_REPORT_SIZE = 0x4a0;
const SNP_SIGNATURE_ALGO_OFFSET = 0x34;
const SNP_ECDSA_P384_SHA384 = 1;
const TDX_TEE_TYPE = 0x81;
const TDX_ECDSA_P256_KEY = 2;
const SPDM_GET_MEASUREMENTS = 0xe0;

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

function isHexDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/** Hex text: only hex digits and ASCII whitespace, an even number of digits, at least one. */
export function isHexText(bytes: Uint8Array): boolean {
  let digits = 0;
  for (const b of bytes) {
    if (isHexDigit(b)) digits++;
    else if (!isWhitespace(b)) return false;
  }
  return digits > 0 && digits % 2 === 0;
}

/** Decodes hex text (whitespace ignored) to bytes; the caller has checked `isHexText`. */
export function decodeHexText(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length >> 1);
  let n = 0;
  let high = -1;
  for (const b of bytes) {
    if (isWhitespace(b)) continue;
    const v = b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x57;
    if (high < 0) high = v;
    else {
      out[n++] = (high << 4) | v;
      high = -1;
    }
  }
  return out.subarray(0, n);
}

/** Evidence bytes as binary: hex text decoded, anything else unchanged. */
export function evidenceBinary(bytes: Uint8Array): Uint8Array {
  return isHexText(bytes) ? decodeHexText(bytes) : bytes;
}

function u16(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8);
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

function recogniseBinary(bytes: Uint8Array): TeeKind | null {
  if (bytes.length >= 4 && bytes[0] === 0x48 && bytes[1] === 0x43 && bytes[2] === 0x4c && bytes[3] === 0x41) {
    return 'snp'; // "HCLA": an Azure HCL report around an SNP report
  }
  if (
    bytes.length >= 8 &&
    [4, 5].includes(u16(bytes, 0)) &&
    u16(bytes, 2) === TDX_ECDSA_P256_KEY &&
    u32(bytes, 4) === TDX_TEE_TYPE
  ) {
    return 'tdx';
  }
  if (bytes.length >= 2 && bytes[0]! >> 4 === 1 && bytes[1] === SPDM_GET_MEASUREMENTS) return 'nvidia';
  if (
    bytes.length === SNP_REPORT_SIZE &&
    [2, 3, 4, 5].includes(u32(bytes, 0)) &&
    u32(bytes, SNP_SIGNATURE_ALGO_OFFSET) === SNP_ECDSA_P384_SHA384
  ) {
    return 'snp';
  }
  return null;
}

function recogniseJson(bytes: Uint8Array): TeeKind | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (Array.isArray(value)) return 'nvidia';
  if (typeof value !== 'object' || value === null) return null;
  if ('svn' in value && 'report_data' in value) return 'sample';
  if ('report' in value || 'hcl_report' in value) return 'snp';
  return null;
}

/** The TEE kind whose evidence `bytes` is, or null when no verifier recognises it. */
export function recogniseTee(bytes: Uint8Array): TeeKind | null {
  if (bytes.length > MAX_EVIDENCE_FILE_SIZE) return null;
  const first = bytes.find((b) => !isWhitespace(b));
  if (first === 0x7b /* { */ || first === 0x5b /* [ */) return recogniseJson(bytes);
  return recogniseBinary(evidenceBinary(bytes));
}

/**
 * The TEE kind to verify `bytes` as: `named` when the caller named one, else the recognised kind.
 * Throws ATTESTATION_TEE_UNSUPPORTED when neither decides.
 */
export function resolveTee(bytes: Uint8Array, named?: TeeKind): TeeKind {
  if (named !== undefined) return named;
  const tee = recogniseTee(bytes);
  if (tee === null) {
    throw new TresorError(
      'ATTESTATION_TEE_UNSUPPORTED',
      'the evidence is not a recognisable SEV-SNP report, TDX quote, NVIDIA GPU evidence or sample evidence',
    );
  }
  return tee;
}
