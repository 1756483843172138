import { type ErrorCode } from '@tresor/protocol';
import type { CheckLog } from '../check-log.js';
import { isTcbStatus } from '../tdx/tcb-status.js';
import type { AppraisalInput, TeeKind, VerificationResult } from '../types.js';
import { TRUST } from './ear.js';
import { GPU_EVIDENCE_MEMBER, listedGpuEvidenceHashes, verifiedGpuEvidenceHashes } from './gpu-binding.js';
import type { AppraisalContext } from './appraise.js';
import type { AppraisalPolicy } from './policy.js';
import type { TrustVectorBuilder } from './trust-vector.js';

/**
 * The appraisal policy's rules, one function each, run in POLICY_RULES order on every verified
 * result. A rule records its check only where it applies, and may only make the trust vector worse.
 */

/** Evidence produced more than this far in the future is refused as well (clock skew allowance). */
const MAX_CLOCK_SKEW_MS = 60_000;
/** TEEs whose TCB is rated by vendor collateral (TDX TCB info and QE identity). */
const COLLATERAL_RATED: readonly TeeKind[] = ['tdx'];

/** The report data the caller's runtime data requires (lowercase hex), or why there is none. */
export interface RuntimeDataBinding {
  readonly expected: string | null;
  readonly failure: { readonly code: ErrorCode; readonly detail: string } | null;
}

/** What every rule sees. */
export interface RuleInput {
  readonly log: CheckLog;
  readonly vector: TrustVectorBuilder;
  readonly result: VerificationResult;
  readonly input: AppraisalInput;
  readonly policy: AppraisalPolicy;
  readonly context: AppraisalContext;
  readonly binding: RuntimeDataBinding;
  /** Every result appraised together (composite evidence). */
  readonly all: readonly VerificationResult[];
}

function checkSampleTee({ log, vector, input, policy }: RuleInput): void {
  if (!input.insecure) return;
  if (policy.allowSampleTee) {
    log.pass('sample_tee_allowed', 'the policy allows the sample TEE: no hardware protects this evidence');
    // Allowed, but never affirming: the sample TEE protects nothing.
    vector.degrade('hardware', TRUST.hardware.unsafe);
    return;
  }
  log.fail(
    'sample_tee_allowed',
    'SAMPLE_TEE_NOT_ALLOWED',
    'the evidence comes from the sample TEE and the policy does not set allowSampleTee',
  );
  vector.degradeFor('SAMPLE_TEE_NOT_ALLOWED');
}

function checkDebug({ log, vector, input, policy }: RuleInput): void {
  if (!input.debug) {
    log.pass('debug_disabled');
    vector.affirm('configuration', TRUST.configuration.approved);
    return;
  }
  if (policy.allowDebug) {
    log.pass('debug_disabled', 'debug is enabled, and the policy allows it (allowDebug)');
    // Allowed, but never affirming: a known-unsafe configuration, and no claim that memory is opaque.
    vector.degrade('configuration', TRUST.configuration.unsafe);
    vector.withdraw('runtime-opaque');
    return;
  }
  log.fail(
    'debug_disabled',
    'ATTESTATION_DEBUG_ENABLED',
    'the TEE allows debugging, so the host can read its memory',
  );
  vector.degradeFor('ATTESTATION_DEBUG_ENABLED');
}

function checkLaunchFlags({ log, vector, input, policy }: RuleInput): void {
  const required = policy.launchFlags?.[input.tee];
  if (required === undefined) return;
  for (const [flag, wanted] of Object.entries(required)) {
    const seen = input.flags[flag];
    if (seen !== wanted) {
      log.fail(
        'launch_flags',
        'ATTESTATION_POLICY_VIOLATION',
        seen === undefined
          ? `the evidence does not state launch flag ${flag}, which the policy requires to be ${wanted}`
          : `launch flag ${flag} is ${seen}; the policy requires ${wanted}`,
      );
      vector.degradeFor('ATTESTATION_POLICY_VIOLATION');
      return;
    }
  }
  log.pass('launch_flags');
}

function checkVmpl({ log, vector, input, policy }: RuleInput): void {
  if (input.vmpl === null) return;
  if (
    !log.check(
      'vmpl_allowed',
      policy.vmpls.includes(input.vmpl),
      'ATTESTATION_VMPL_NOT_ALLOWED',
      `VMPL ${input.vmpl}; allowed ${policy.vmpls.join(', ')}`,
    )
  ) {
    vector.degradeFor('ATTESTATION_VMPL_NOT_ALLOWED');
  }
}

function checkTcbStatus({ log, vector, input, policy }: RuleInput): void {
  const status = input.tcb.status;
  const rated = COLLATERAL_RATED.includes(input.tee);
  if (status === undefined) {
    if (!rated || !policy.tcb.requireStatus) return;
    log.fail(
      'tcb_status_accepted',
      'ATTESTATION_COLLATERAL_MISSING',
      `the ${input.tee} evidence was verified without collateral, so its TCB status is unknown`,
    );
    vector.degradeFor('ATTESTATION_COLLATERAL_MISSING');
    return;
  }
  if (typeof status !== 'string' || !isTcbStatus(status)) {
    log.fail(
      'tcb_status_accepted',
      'TCB_UNRECOGNISED',
      `TCB status ${String(status)} is not one the policy can rate`,
    );
    vector.degradeFor('TCB_UNRECOGNISED');
    return;
  }
  if (status === 'Revoked') {
    log.fail('tcb_status_accepted', 'TCB_REVOKED', 'the vendor rates this TCB level Revoked');
    vector.degradeFor('TCB_REVOKED');
    return;
  }
  const advisories = input.tcb.advisoryIds;
  const detail = `status ${status}${Array.isArray(advisories) && advisories.length > 0 ? ` (${advisories.join(', ')})` : ''}; accepted ${policy.tcb.acceptedStatuses.join(', ')}`;
  if (!policy.tcb.acceptedStatuses.includes(status)) {
    log.fail('tcb_status_accepted', 'TCB_OUT_OF_DATE', detail);
    vector.degradeFor('TCB_OUT_OF_DATE');
    return;
  }
  log.pass('tcb_status_accepted', detail);
  // Accepted but not the latest: genuine hardware with known vulnerabilities.
  if (status !== 'UpToDate') vector.degrade('hardware', TRUST.hardware.unsafe);
}

function checkTcbMinimum({ log, vector, input, policy }: RuleInput): void {
  const rules = policy.tcb.minimum.filter((m) => m.tee === input.tee);
  if (rules.length === 0) return;
  const product = typeof input.tcb.product === 'string' ? input.tcb.product : undefined;
  const rule = rules.find((m) => m.product === product) ?? rules.find((m) => m.product === undefined);
  const fail = (detail: string): void => {
    log.fail('tcb_minimum', 'TCB_OUT_OF_DATE', detail);
    vector.degradeFor('TCB_OUT_OF_DATE');
  };
  if (rule === undefined) {
    fail(`the policy lists no minimum TCB for ${input.tee} product ${product ?? '(unknown)'}`);
    return;
  }
  for (const [component, minimum] of Object.entries(rule.components)) {
    const value = input.tcb[component];
    if (typeof value !== 'number') {
      fail(`the evidence does not state TCB component ${component}`);
      return;
    }
    if (value < minimum) {
      fail(`TCB component ${component} is ${value}; the policy minimum is ${minimum}`);
      return;
    }
  }
  log.pass('tcb_minimum', `at or above the minimum for ${rule.product ?? input.tee}`);
}

function checkMeasurements({ log, vector, input, policy }: RuleInput): void {
  const fail = (detail: string): void => {
    log.fail('measurements_allowed', 'MEASUREMENT_NOT_ALLOWED', detail);
    vector.degradeFor('MEASUREMENT_NOT_ALLOWED');
  };
  if (policy.measurements === undefined) {
    fail('the policy lists no reference measurements (set "measurements", or "any" outside production)');
    return;
  }
  if (policy.measurements === 'any') {
    // Waived explicitly: recorded, but the executables are never affirmed.
    log.pass('measurements_allowed', 'any measurement accepted: the policy waives reference values');
    return;
  }
  const reference = policy.measurements[input.tee];
  if (reference === undefined) {
    fail(`the policy lists no reference values for ${input.tee} evidence`);
    return;
  }
  for (const [component, allowed] of Object.entries(reference)) {
    const value = input.measurements[component];
    if (value === undefined) {
      fail(`the evidence has no measurement named ${component}`);
      return;
    }
    if (!allowed.includes(value.toLowerCase())) {
      fail(`${component} ${value} is not an allowed reference value`);
      return;
    }
  }
  log.pass('measurements_allowed', `${Object.keys(reference).join(', ')} match reference values`);
  vector.affirm('executables', TRUST.executables.approvedBoot);
}

function checkReportData({ log, vector, input, policy, binding }: RuleInput): void {
  // GPU evidence carries no report data; it is bound through the CPU report (gpu_evidence_bound).
  if (!policy.requireReportDataBinding || input.tee === 'nvidia') return;
  const code = reportDataVerdict(input, binding);
  if (code === null) {
    log.pass('report_data_bound', 'report data = SHA-384(JCS(runtime data)) padded to 64 bytes');
    return;
  }
  log.fail('report_data_bound', code.code, code.detail);
  vector.degradeFor(code.code);
}

function reportDataVerdict(
  input: AppraisalInput,
  binding: RuntimeDataBinding,
): { code: ErrorCode; detail: string } | null {
  if (binding.failure !== null) return binding.failure;
  if (input.reportData === null)
    return { code: 'REPORT_DATA_MISMATCH', detail: 'the evidence carries no report data' };
  if (input.reportData.toLowerCase() !== binding.expected) {
    return {
      code: 'REPORT_DATA_MISMATCH',
      detail: 'the report data is not SHA-384(JCS(runtime data)) padded to 64 bytes',
    };
  }
  return null;
}

function checkFreshness({ log, vector, policy, context }: RuleInput): void {
  if (policy.maxEvidenceAgeSeconds === undefined) return;
  const fail = (detail: string): void => {
    log.fail('evidence_fresh', 'EVIDENCE_STALE', detail);
    vector.degradeFor('EVIDENCE_STALE');
  };
  if (context.evidenceTime === undefined) {
    fail('the policy limits evidence age, but no evidence time was supplied');
    return;
  }
  const ageMs = context.now.getTime() - context.evidenceTime.getTime();
  if (ageMs < -MAX_CLOCK_SKEW_MS) {
    fail(`the evidence time ${context.evidenceTime.toISOString()} is in the future`);
  } else if (ageMs > policy.maxEvidenceAgeSeconds * 1000) {
    fail(
      `the evidence is ${Math.floor(ageMs / 1000)} s old; the policy allows ${policy.maxEvidenceAgeSeconds} s`,
    );
  } else {
    log.pass('evidence_fresh', `${Math.max(0, Math.floor(ageMs / 1000))} s old`);
  }
}

function isZeroHex(id: string): boolean {
  return /^0*$/.test(id);
}

function checkResidency({ log, vector, input, policy }: RuleInput): void {
  const fail = (detail: string): void => {
    log.fail('hardware_id_in_inventory', 'RESIDENCY_VIOLATION', detail);
    vector.degradeFor('RESIDENCY_VIOLATION');
  };
  if (policy.hardwareIds === undefined) {
    fail('the policy has no residency inventory (set "hardwareIds", or "any" outside production)');
    return;
  }
  if (policy.hardwareIds === 'any') {
    log.pass('hardware_id_in_inventory', 'any hardware accepted: the policy waives the residency inventory');
    return;
  }
  const inventory = new Set(policy.hardwareIds);
  // An all-zero id (SNP MASK_CHIP_ID, VLEK-signed reports) identifies no machine.
  const ids = input.hardwareIds.map((id) => id.toLowerCase()).filter((id) => !isZeroHex(id));
  if (ids.length === 0) {
    fail('the evidence names no hardware id, so residency cannot be established');
    return;
  }
  const unknown = ids.find((id) => !inventory.has(id));
  if (unknown !== undefined) {
    fail(`hardware id ${unknown.slice(0, 32)}… is not in the residency inventory`);
    return;
  }
  log.pass('hardware_id_in_inventory', `${ids.length} hardware id(s) in the inventory`);
}

function checkGpuBinding({ log, vector, result, policy, context, binding, all }: RuleInput): void {
  if (result.tee !== 'nvidia' || !policy.requireGpuBinding) return;
  const fail = (detail: string): void => {
    log.fail('gpu_evidence_bound', 'GPU_EVIDENCE_NOT_BOUND', detail);
    vector.degradeFor('GPU_EVIDENCE_NOT_BOUND');
  };
  const cpus = all.filter((r) => r.tee !== 'nvidia');
  if (cpus.length === 0) {
    fail('GPU evidence must be presented with the CPU TEE evidence that binds it');
    return;
  }
  const hashes = verifiedGpuEvidenceHashes(result);
  if (hashes === null) {
    fail('the GPU verification result does not state the evidence hash (evidence_sha256)');
    return;
  }
  if (cpus.some((cpu) => !cpu.valid)) {
    fail('the CPU evidence that should vouch for the GPU evidence failed verification');
    return;
  }
  // The runtime data counts only if it is what the CPU reports actually bind.
  if (cpus.some((cpu) => reportDataVerdict(cpu.appraisal, binding) !== null)) {
    fail('the runtime data that should list the GPU evidence is not bound by the CPU report data');
    return;
  }
  const listed = listedGpuEvidenceHashes(context.runtimeData);
  if (listed === null) {
    fail(`the CPU runtime data has no "${GPU_EVIDENCE_MEMBER}" list`);
    return;
  }
  const missing = hashes.findIndex((h) => !listed.includes(h));
  if (missing !== -1) {
    fail(
      `GPU ${missing}'s evidence hash ${hashes[missing]!.slice(0, 16)}… is not listed in the CPU runtime data`,
    );
    return;
  }
  log.pass('gpu_evidence_bound', `${hashes.length} GPU evidence hash(es) listed in the CPU runtime data`);
  vector.affirm('sourced-data', TRUST.sourcedData.trusted);
}

/** The rules, in the order their checks are recorded. */
export const POLICY_RULES: readonly ((rule: RuleInput) => void)[] = [
  checkSampleTee,
  checkDebug,
  checkLaunchFlags,
  checkVmpl,
  checkTcbStatus,
  checkTcbMinimum,
  checkMeasurements,
  checkReportData,
  checkFreshness,
  checkResidency,
  checkGpuBinding,
];
