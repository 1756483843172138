import type { ErrorCode } from '@tresor/protocol';
import { equalBytes, hexToBytes } from '@tresor/crypto';
import type { IsvSvnLevel, TdQeIdentity, TdxTcbInfo } from './collateral-schema.js';
import type { PckSgxExtension } from './pck-extension.js';
import type { QeReport } from './qe-report.js';
import type { TdReport } from './td-report.js';

/**
 * TCB status of a TD platform from signed collateral, following Intel's TDX quote appraisal
 * (Intel SGX/TDX DCAP Quote Verification Library, TcbLevelCheck / TdxModuleCheck, and the PCS API
 * "TDX TCB Info" semantics), in the form the testdata README fixes:
 *
 * 1. Platform: the first TCB level (Intel lists them newest first) whose PCESVN and 16 SGX
 *    components are each <= the PCK certificate's, and whose 16 TDX components are each <=
 *    TEE_TCB_SVN. (Intel's QVL skips TDX components 0-1 when the module major version is > 0 and
 *    leaves them to the module identity; the README's rule, which the vectors' reference tool
 *    applies, compares all 16, so an outdated module matches no level: stricter, never looser.)
 *    For a TDX module with major version TEE_TCB_SVN[1] > 0 the module identity
 *    `TDX_<major>` must exist, its MRSIGNER/attributes must match the report's MRSIGNERSEAM /
 *    SEAMATTRIBUTES, and its first level with isvsvn <= TEE_TCB_SVN[0] rates the module.
 * 2. Quoting enclave: MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES (under their masks) must match
 *    the TD_QE identity; its first level with isvsvn <= the QE's ISVSVN rates the QE.
 * 3. The final status is the more severe of the two; advisory IDs are the union.
 *
 * A platform below every level is not "OutOfDate" but unrecognised: Intel lists no level for it.
 */

/** Intel's TCB statuses, least to most severe (the order used to merge two ratings). */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;

export type TcbStatus = (typeof TCB_STATUSES)[number];

export interface TcbRating {
  readonly status: TcbStatus;
  readonly advisoryIds: readonly string[];
}

export type TcbMatch =
  | { readonly matched: true; readonly rating: TcbRating }
  | { readonly matched: false; readonly reason: string; readonly code: ErrorCode };

export function isTcbStatus(value: string): value is TcbStatus {
  return (TCB_STATUSES as readonly string[]).includes(value);
}

/** The more severe status; advisory IDs of `a`, then those of `b` not already listed. */
export function mergeRatings(a: TcbRating, b: TcbRating): TcbRating {
  const status = TCB_STATUSES.indexOf(a.status) >= TCB_STATUSES.indexOf(b.status) ? a.status : b.status;
  return {
    status,
    advisoryIds: [...a.advisoryIds, ...b.advisoryIds.filter((id) => !a.advisoryIds.includes(id))],
  };
}

/** The overall rating: both matched → merged; otherwise the first that did not (platform first). */
export function combineMatches(platform: TcbMatch, qe: TcbMatch): TcbMatch {
  if (!platform.matched) return platform;
  if (!qe.matched) return qe;
  return { matched: true, rating: mergeRatings(platform.rating, qe.rating) };
}

export function ratePlatform(
  tcbInfo: TdxTcbInfo,
  pck: PckSgxExtension,
  body: TdReport,
  hex: HexFields = new HexFields(),
): TcbMatch {
  if (!equalBytes(hex.bytes(tcbInfo.fmspc), pck.fmspc)) {
    return mismatch('FMSPC mismatch', 'ATTESTATION_COLLATERAL_INVALID');
  }
  if (!equalBytes(hex.bytes(tcbInfo.pceId), pck.pceId)) {
    return mismatch('PCE-ID mismatch', 'ATTESTATION_COLLATERAL_INVALID');
  }
  const teeTcbSvn = body.teeTcbSvn;
  const level = tcbInfo.tcbLevels.find(
    ({ tcb }) =>
      tcb.pcesvn <= pck.pceSvn &&
      tcb.sgxtcbcomponents.every((c, i) => c.svn <= (pck.cpuSvnComponents[i] ?? 0)) &&
      tcb.tdxtcbcomponents.every((c, i) => c.svn <= (teeTcbSvn[i] ?? 0)),
  );
  if (level === undefined) return mismatch('no matching TCB level', 'TCB_UNRECOGNISED');
  const platform = rating(level.tcbStatus, level.advisoryIDs);
  if (!platform.matched) return platform;
  const module = rateTdxModule(tcbInfo, body, hex);
  if (!module.matched) return module;
  return module.rating === undefined
    ? platform
    : { matched: true, rating: mergeRatings(platform.rating, module.rating) };
}

/** The TDX module's own rating: undefined for a major-version-0 module, judged by `tdxModule` alone. */
function rateTdxModule(
  tcbInfo: TdxTcbInfo,
  body: TdReport,
  hex: HexFields,
):
  { readonly matched: true; readonly rating: TcbRating | undefined } | Extract<TcbMatch, { matched: false }> {
  const minorSvn = body.teeTcbSvn[0] ?? 0;
  const major = body.teeTcbSvn[1] ?? 0;
  const identities = tcbInfo.tdxModuleIdentities ?? [];
  if (major === 0 || identities.length === 0) {
    const module = tcbInfo.tdxModule;
    if (module === undefined) return mismatch('TCB info has no TDX module', 'TCB_UNRECOGNISED');
    return moduleSignerMatches(module, body, hex)
      ? { matched: true, rating: undefined }
      : mismatch('TDX module MRSIGNER mismatch', 'TCB_UNRECOGNISED');
  }
  const id = `TDX_${major.toString(16).toUpperCase().padStart(2, '0')}`;
  const identity = identities.find((candidate) => candidate.id.toUpperCase() === id);
  if (identity === undefined) return mismatch(`no TDX module identity ${id}`, 'TCB_UNRECOGNISED');
  if (!moduleSignerMatches(identity, body, hex))
    return mismatch('TDX module MRSIGNER mismatch', 'TCB_UNRECOGNISED');
  const level = firstLevelAtOrBelow(identity.tcbLevels, minorSvn);
  if (level === undefined) return mismatch('TDX module ISVSVN below minimum', 'TCB_UNRECOGNISED');
  const module = rating(level.tcbStatus, level.advisoryIDs);
  return module.matched ? { matched: true, rating: module.rating } : module;
}

/** MRSIGNERSEAM equal, SEAMATTRIBUTES equal under the identity's mask. */
function moduleSignerMatches(
  module: { readonly mrsigner: string; readonly attributes: string; readonly attributesMask: string },
  body: TdReport,
  hex: HexFields,
): boolean {
  return (
    equalBytes(hex.bytes(module.mrsigner), body.mrSignerSeam) &&
    maskedEqual(hex.bytes(module.attributes), hex.bytes(module.attributesMask), body.seamAttributes)
  );
}

export function rateQuotingEnclave(
  identity: TdQeIdentity,
  qe: QeReport,
  hex: HexFields = new HexFields(),
): TcbMatch {
  if (!equalBytes(hex.bytes(identity.mrsigner), qe.mrSigner)) {
    return mismatch('QE MRSIGNER mismatch', 'ATTESTATION_COLLATERAL_INVALID');
  }
  if (identity.isvprodid !== qe.isvProdId)
    return mismatch('QE ISVPRODID mismatch', 'ATTESTATION_COLLATERAL_INVALID');
  // MISCSELECT is a u32; the identity writes it as big-endian hex, the report stores it little-endian.
  const miscselect = parseInt(identity.miscselect, 16);
  const miscselectMask = parseInt(identity.miscselectMask, 16);
  if ((qe.miscSelect & miscselectMask) >>> 0 !== (miscselect & miscselectMask) >>> 0) {
    return mismatch('QE MISCSELECT mismatch', 'ATTESTATION_COLLATERAL_INVALID');
  }
  if (!maskedEqual(hex.bytes(identity.attributes), hex.bytes(identity.attributesMask), qe.attributes)) {
    return mismatch('QE ATTRIBUTES mismatch', 'ATTESTATION_COLLATERAL_INVALID');
  }
  const level = firstLevelAtOrBelow(identity.tcbLevels, qe.isvSvn);
  if (level === undefined) return mismatch('QE ISVSVN below minimum', 'TCB_UNRECOGNISED');
  return rating(level.tcbStatus, level.advisoryIDs);
}

function firstLevelAtOrBelow(levels: readonly IsvSvnLevel[], isvSvn: number): IsvSvnLevel | undefined {
  return levels.find((level) => level.tcb.isvsvn <= isvSvn);
}

/** `expected` and `mask` are byte strings in memory order, as Intel writes them. */
function maskedEqual(expected: Uint8Array, mask: Uint8Array, actual: Uint8Array): boolean {
  for (let i = 0; i < actual.length; i++) {
    const m = mask[i] ?? 0;
    if (((actual[i] ?? 0) & m) !== ((expected[i] ?? 0) & m)) return false;
  }
  return true;
}

/**
 * The hex fields of collateral documents as bytes, each decoded once (the schema has checked they
 * are hex of the right length). One lives with each examined collateral file, so quotes rated
 * against the same collateral again and again do not decode it again.
 */
export class HexFields {
  readonly #decoded = new Map<string, Uint8Array>();

  bytes(hex: string): Uint8Array {
    let bytes = this.#decoded.get(hex);
    if (bytes === undefined) {
      bytes = hexToBytes(hex);
      this.#decoded.set(hex, bytes);
    }
    return bytes;
  }
}

function rating(status: string, advisoryIds: readonly string[] | undefined): TcbMatch {
  if (!isTcbStatus(status))
    return mismatch(`unknown TCB status ${JSON.stringify(status)}`, 'TCB_UNRECOGNISED');
  return { matched: true, rating: { status, advisoryIds: advisoryIds ?? [] } };
}

function mismatch(reason: string, code: ErrorCode): Extract<TcbMatch, { matched: false }> {
  return { matched: false, reason, code };
}
