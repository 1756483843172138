import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { utf8Decode } from '@tresor/crypto';
import { TCB_STATUSES } from '../tdx/tcb-status.js';

/**
 * The appraisal policy: what a relying party (the trust service, a client) requires of verified
 * evidence beyond the hardware checks. JSON, strict (an unknown member is an error, so a typo can
 * never silently drop a rule), every rule documented in docs/attestation.md. Defaults fail closed:
 * the sample TEE, debug TEEs and VMPLs other than 0 are refused, TDX evidence must carry a TCB
 * status from collateral and that status must be UpToDate, CPU report data must bind the caller's
 * runtime data, and a policy without reference measurements or a residency inventory refuses
 * everything until it lists them (or waives them with "any").
 */

const TEE_KINDS = ['snp', 'tdx', 'nvidia', 'sample'] as const;

const hexValue = z
  .string()
  .regex(/^(?:[0-9a-fA-F]{2})+$/, 'hex digits (an even number)')
  .transform((s) => s.toLowerCase());
const componentName = z
  .string()
  .regex(/^[a-z][a-z0-9_.]{0,63}$/, 'a component name such as "mrtd" or "gpu0.block2"');
const teeKind = z.enum(TEE_KINDS);

const minimumTcbSchema = z.strictObject({
  /** The TEE kind this minimum applies to. */
  tee: teeKind,
  /** Processor product (SNP: Milan, Genoa, Turin); omitted = any product of that TEE. */
  product: z.string().min(1).max(64).optional(),
  /** Minimum value per TCB component, e.g. {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}. */
  components: z.record(componentName, z.number().int().nonnegative()),
});

export const appraisalPolicySchema = z.strictObject({
  /** Identifies the policy in results (`ear.appraisal-policy-id`). */
  id: z.string().min(1).max(200).default('default'),
  /** Accept the sample (software) TEE. Only for local development: it protects nothing. */
  allowSampleTee: z.boolean().default(false),
  /** Accept TEEs whose memory the host can read (SNP policy DEBUG, TDX attribute DEBUG). */
  allowDebug: z.boolean().default(false),
  /**
   * Reference values: per TEE kind, per named measurement (AppraisalInput.measurements), the allowed
   * lowercase-hex values. Evidence of a TEE kind not listed is refused, and every listed component
   * must be present in the evidence with an allowed value. Required: without reference values the
   * policy cannot say the code is the intended one. `"any"` waives the rule explicitly (tests, local
   * development); it never affirms the executables.
   */
  measurements: z
    .union([z.literal('any'), z.partialRecord(teeKind, z.record(componentName, z.array(hexValue).min(1)))])
    .optional(),
  tcb: z
    .strictObject({
      /** Minimum TCB component values, per TEE kind and product. */
      minimum: z.array(minimumTcbSchema).default([]),
      /** TCB statuses accepted from collateral; ["UpToDate"] means "latest from collateral". */
      acceptedStatuses: z.array(z.enum(TCB_STATUSES)).min(1).default(['UpToDate']),
      /** TEEs rated by collateral (TDX) must carry a status, i.e. be verified with collateral. */
      requireStatus: z.boolean().default(true),
    })
    .prefault({}),
  /** SNP VM privilege levels whose reports are accepted. */
  vmpls: z.array(z.number().int().min(0).max(3)).min(1).default([0]),
  /**
   * Launch-policy facts that must have a given value, per TEE kind, e.g.
   * {"snp": {"migrate_ma": false, "smt_allowed": false}} (AppraisalInput.flags).
   */
  launchFlags: z.partialRecord(teeKind, z.record(componentName, z.boolean())).optional(),
  /** Oldest evidence accepted, in seconds before the appraisal time. */
  maxEvidenceAgeSeconds: z.number().int().positive().optional(),
  /** CPU report data must equal SHA-384(JCS(runtime data)) zero-padded to 64 bytes. */
  requireReportDataBinding: z.boolean().default(true),
  /**
   * Residency inventory: the hardware ids (SNP chip ids, TDX platform ids, GPU ids) allowed to
   * run the workload. Every hardware id of the evidence must be listed, and evidence without any
   * hardware id is refused. Required, like the reference values; `"any"` waives it explicitly.
   */
  hardwareIds: z.union([z.literal('any'), z.array(hexValue)]).optional(),
  /** Composite evidence: the CPU runtime data must list the hash of each GPU's evidence. */
  requireGpuBinding: z.boolean().default(true),
});

/** A validated appraisal policy, defaults filled in. */
export type AppraisalPolicy = z.infer<typeof appraisalPolicySchema>;
/** A policy as written in a file (defaults optional). */
export type AppraisalPolicyInput = z.input<typeof appraisalPolicySchema>;

/**
 * Validates a policy object. Throws CONFIG_INVALID naming the first offending field (JSON path), so
 * the operator can fix exactly that line.
 */
export function parseAppraisalPolicy(value: unknown): AppraisalPolicy {
  const parsed = appraisalPolicySchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  // An unknown member is reported at the member itself, so a typo is named exactly.
  const unknown = issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  const segments = [...(issue?.path ?? []), ...(unknown === undefined ? [] : [unknown])].map(String);
  const path = segments.length === 0 ? '(top level)' : segments.join('.');
  const why = unknown === undefined ? (issue?.message ?? 'invalid') : 'not a policy member (misspelt?)';
  throw new TresorError('CONFIG_INVALID', `appraisal policy field ${path}: ${why}`, {
    details: { path, issues: parsed.error.issues.length },
  });
}

/** Reads a policy file (UTF-8 JSON). INPUT_MALFORMED when it is not JSON, CONFIG_INVALID when a field is wrong. */
export function loadAppraisalPolicy(bytes: Uint8Array): AppraisalPolicy {
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(bytes));
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', 'the appraisal policy file is not UTF-8 JSON', { cause });
  }
  return parseAppraisalPolicy(value);
}

/** The default policy: every rule at its fail-closed default. */
export function defaultAppraisalPolicy(): AppraisalPolicy {
  return parseAppraisalPolicy({});
}
