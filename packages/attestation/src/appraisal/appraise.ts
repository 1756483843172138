import { TresorError, type ErrorCode } from '@tresor/protocol';
import { bytesToHex, runtimeDataHash } from '@tresor/crypto';
import { CheckLog } from '../check-log.js';
import type { Checks, VerificationResult } from '../types.js';
import {
  EAR_PROFILE,
  TRUST_CLAIMS,
  trustTier,
  worseStatus,
  type EarClaims,
  type EarStatus,
  type EarSubmodule,
} from './ear.js';
import type { AppraisalPolicy } from './policy.js';
import { POLICY_RULES, type RuntimeDataBinding } from './rules.js';
import { TrustVectorBuilder } from './trust-vector.js';

/** What the relying party knows besides the evidence. */
export interface AppraisalContext {
  /** The appraisal instant (injected; also the EAR `iat`). */
  readonly now: Date;
  /** The CPU TEE's runtime data (a JSON object: keys, nonce, GPU evidence digests) its report data must bind. */
  readonly runtimeData?: unknown;
  /** When the evidence was produced (e.g. when the relying party issued the nonce). */
  readonly evidenceTime?: Date;
}

export interface AppraisalResult {
  /** The overall verdict: the worst submodule status. Only `affirming` is fully trusted. */
  readonly status: EarStatus;
  /** Code of the first failed check, or null. */
  readonly error: ErrorCode | null;
  /** Codes of every failed check across all evidence, in order, without repeats. */
  readonly errors: readonly ErrorCode[];
  /** The EAR claims-set, one submodule per piece of evidence (`cpu0`, `gpu0`, …). */
  readonly ear: EarClaims;
}

export const ATTESTATION_VERIFIER_ID = { developer: 'Tresor', build: 'tresor-attestation 0.1.0' } as const;

/**
 * Appraises verified evidence against a policy: go-sev-guest's "validate" step, TEE-independent.
 * Every hardware check failure and every policy rule the evidence breaks is recorded; any failure
 * makes the result `contraindicated`. Anything the policy cannot decide (a missing measurement, no
 * runtime data, no evidence time, no hardware id) is refused, never waved through.
 */
export async function appraise(
  results: readonly VerificationResult[],
  policy: AppraisalPolicy,
  context: AppraisalContext,
): Promise<AppraisalResult> {
  if (results.length === 0) {
    throw new TresorError('USAGE_INVALID', 'appraise() needs at least one verified evidence');
  }
  const binding = await verifiedRuntimeData(context);
  const submods: Record<string, EarSubmodule> = {};
  const errors: ErrorCode[] = [];
  let status: EarStatus = 'none';
  const counters = { cpu: 0, gpu: 0 };
  for (const result of results) {
    const kind = result.tee === 'nvidia' ? 'gpu' : 'cpu';
    const name = `${kind}${counters[kind]++}`;
    const submod = appraiseOne(result, policy, context, binding, results);
    submods[name] = submod;
    for (const code of submod['ear.tresor.errors']) if (!errors.includes(code)) errors.push(code);
    status = worseStatus(status, submod['ear.status']);
  }
  return {
    status,
    error: errors[0] ?? null,
    errors,
    ear: {
      eat_profile: EAR_PROFILE,
      iat: Math.floor(context.now.getTime() / 1000),
      'ear.verifier-id': ATTESTATION_VERIFIER_ID,
      submods,
    },
  };
}

async function verifiedRuntimeData(context: AppraisalContext): Promise<RuntimeDataBinding> {
  if (context.runtimeData === undefined) {
    return {
      expected: null,
      failure: {
        code: 'REPORT_DATA_MISMATCH',
        detail: 'no runtime data was supplied to compare the report data with',
      },
    };
  }
  try {
    return { expected: bytesToHex(await runtimeDataHash(context.runtimeData)), failure: null };
  } catch (cause) {
    const code = cause instanceof TresorError ? cause.code : 'JCS_VALUE_INVALID';
    return { expected: null, failure: { code, detail: 'the runtime data is not JSON and cannot be hashed' } };
  }
}

function appraiseOne(
  result: VerificationResult,
  policy: AppraisalPolicy,
  context: AppraisalContext,
  binding: RuntimeDataBinding,
  all: readonly VerificationResult[],
): EarSubmodule {
  const input = result.appraisal;
  const vector = new TrustVectorBuilder();
  vector.fromHardware(result);
  const log = new CheckLog();
  for (const rule of POLICY_RULES) rule({ log, vector, result, input, policy, context, binding, all });

  const hardwareErrors = failedCodes(result.checks);
  const policyErrors = failedCodes(log.checks);
  const errors = [...new Set([...hardwareErrors, ...policyErrors])];
  const trust = vector.build();
  let status: EarStatus = 'none';
  for (const claim of TRUST_CLAIMS) status = worseStatus(status, trustTier(trust[claim]));
  // Fail closed: whatever the vector says, a failed check is a refusal.
  if (errors.length > 0) status = 'contraindicated';
  return {
    'ear.status': status,
    'ear.trustworthiness-vector': trust,
    'ear.appraisal-policy-id': policy.id,
    'ear.tresor.tee': input.tee,
    'ear.tresor.insecure': input.insecure,
    'ear.tresor.errors': errors,
    'ear.tresor.checks': mergeChecks(result.checks, log.checks),
  };
}

/** Hardware checks, then policy checks; a policy check never hides a hardware check of the same name. */
function mergeChecks(hardware: Checks, policy: Checks): Checks {
  const merged: Record<string, Checks[string]> = { ...hardware };
  for (const [name, check] of Object.entries(policy))
    merged[name in merged ? `policy_${name}` : name] = check;
  return merged;
}

function failedCodes(checks: Checks): ErrorCode[] {
  const codes: ErrorCode[] = [];
  for (const check of Object.values(checks))
    if (!check.ok && check.code !== undefined) codes.push(check.code);
  return codes;
}
