import type { ErrorCode } from '@tresor/protocol';

/** TEE kinds Tresor verifies. `sample` is the software stand-in for local runs: it protects nothing. */
export type TeeKind = 'snp' | 'tdx' | 'nvidia' | 'sample';

/** One check's outcome, as `tresor attest verify --json` prints it under `checks`. */
export interface CheckResult {
  readonly ok: boolean;
  /** Catalogue code, present when the check failed. */
  readonly code?: ErrorCode;
  /** Non-secret detail: what was seen and what was expected. */
  readonly detail?: string;
}

/** Checks by name, in the order they ran. */
export type Checks = Readonly<Record<string, CheckResult>>;

/**
 * The verifier's hardware verdict (signatures, chains, validity at `now`, collateral), before any
 * policy. Verification failures are results, not exceptions, so a caller can show every check;
 * only unparseable input throws (ATTESTATION_EVIDENCE_MALFORMED).
 */
export interface VerificationResult<C = unknown> {
  readonly tee: TeeKind;
  /** True only when every check passed. */
  readonly valid: boolean;
  /** Code of the first failed check, or null. */
  readonly error: ErrorCode | null;
  readonly checks: Checks;
  /** Parsed claims, named and encoded as in testdata's expected.json (lowercase hex, numbers, booleans). */
  readonly claims: C;
  /** The TEE-independent view the appraisal policy works on. */
  readonly appraisal: AppraisalInput;
}

/** What appraisal needs from any TEE's evidence, normalised (all hex lowercase). */
export interface AppraisalInput {
  readonly tee: TeeKind;
  /** True for the sample TEE: no hardware protects it. */
  readonly insecure: boolean;
  /** True when the TEE allows the host to read its memory (SNP policy DEBUG, TDX attribute DEBUG). */
  readonly debug: boolean;
  /**
   * Named measurements: snp `measurement`, `host_data`; tdx `mrtd`, `rtmr0`..`rtmr3`, `mrconfigid`,
   * `mrowner`, `mrownerconfig`, `mrseam`; nvidia `gpu<i>.block<n>`; sample `measurement`.
   */
  readonly measurements: Readonly<Record<string, string>>;
  /** The 64-byte report data the TEE bound into the evidence (hex), or null if the TEE has none. */
  readonly reportData: string | null;
  /** Hardware identities for the residency inventory: SNP chip id, TDX PPID/FMSPC, GPU serials. */
  readonly hardwareIds: readonly string[];
  /** TCB facts: snp reported TCB components, tdx `status` (from collateral) and advisories. */
  readonly tcb: Readonly<Record<string, number | string | readonly string[]>>;
  /** SNP VMPL; null for other TEEs. */
  readonly vmpl: number | null;
  /** Nonce carried by the evidence itself (GPU SPDM requester nonce), or null. */
  readonly nonce: string | null;
  /** Other launch-policy facts the policy may test (snp: migrate_ma, smt_allowed, ...). */
  readonly flags: Readonly<Record<string, boolean>>;
}

export interface VerifyOptions {
  /** The instant at which certificates and collateral must be valid. Injected, never read from a clock here. */
  readonly now: Date;
}

/**
 * A verifier for one TEE kind, in go-sev-guest's three steps: `parse` (bytes → typed report, throws on
 * malformed input), `verify` (signatures, chains, collateral → VerificationResult), and appraisal,
 * which is TEE-independent and works on `VerificationResult.appraisal` (see appraisal.ts).
 */
export interface Verifier<Report, Endorsements> {
  readonly tee: TeeKind;
  parse(evidence: Uint8Array): Report;
  verify(report: Report, endorsements: Endorsements, options: VerifyOptions): Promise<VerificationResult>;
}
