import { z } from 'zod';
import type { AttestationFiles, AttestationRole } from '../verify-attestation.js';
import type { TeeKind } from '../types.js';

/**
 * The shared attestation test data (`testdata/attestation/<tee>/<name>/expected.json`) as typed
 * values, so one table-driven test, the CLI test and the conformance suite read every vector the
 * same way and a new vector folder needs no code. Pure: the caller supplies the file reader.
 */

const ROLES: readonly AttestationRole[] = [
  'report',
  'quote',
  'evidence',
  'signer_cert',
  'ca_chain',
  'crl',
  'collateral',
  'intel_root_ca',
  'cert_chain',
  'nvidia_device_root',
  'sample_key',
];

const caseSchema = z.object({
  verify_at: z.iso.datetime({ offset: true }),
  expected_outcome: z.enum(['valid', 'invalid']),
  /** Present (possibly null) when the case pins the TDX TCB status. */
  expected_tcb_status: z.string().nullable().optional(),
  reason: z.string(),
  computed: z.object({
    failed_checks: z.array(z.string()),
    checks: z.record(z.string(), z.boolean()),
    tcb_status: z.string().optional(),
  }),
});

const expectedSchema = z.object({
  tee: z.enum(['snp', 'tdx', 'nvidia']),
  name: z.string(),
  inputs: z.record(z.string(), z.unknown()),
  cases: z.array(caseSchema).min(1),
  claims: z.record(z.string(), z.unknown()),
});

export interface TestdataCase {
  readonly verifyAt: Date;
  readonly valid: boolean;
  /** undefined: not pinned; null: no TCB level matches; else the Intel status. */
  readonly expectedTcbStatus: string | null | undefined;
  readonly reason: string;
  /** The testdata tool's individual checks, minus those only it ran (openssl, container cut). */
  readonly checks: Readonly<Record<string, boolean>>;
}

export interface TestdataVector {
  readonly tee: TeeKind;
  /** `<tee>/<name>`, for test titles. */
  readonly id: string;
  readonly files: AttestationFiles;
  /** Which role holds the evidence (report, quote or evidence). */
  readonly evidenceRole: AttestationRole;
  readonly cases: readonly TestdataCase[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Checks only the testdata tool ran (independent openssl runs, the cut from a published container). */
function toolOnly(name: string): boolean {
  return name.startsWith('openssl_') || name === 'report_matches_published_container';
}

/**
 * Reads one vector: `expected` is its parsed expected.json, `read(file)` returns a file of its
 * folder. Every `inputs` member that names a role (report, signer_cert, …) becomes a file; the
 * descriptive ones (`format`, `report_encoding`, `report_source`) are not files.
 */
export function testdataVector(expected: unknown, read: (file: string) => Uint8Array): TestdataVector {
  const parsed = expectedSchema.parse(expected);
  const files: Partial<Record<AttestationRole, Uint8Array>> = {};
  for (const role of ROLES) {
    const file = parsed.inputs[role];
    if (typeof file === 'string') files[role] = read(file);
  }
  const evidenceRole = (['report', 'quote', 'evidence'] as const).find((r) => files[r] !== undefined);
  if (evidenceRole === undefined)
    throw new Error(`${parsed.tee}/${parsed.name}: inputs name no evidence file`);
  return {
    tee: parsed.tee,
    id: `${parsed.tee}/${parsed.name}`,
    files,
    evidenceRole,
    claims: parsed.claims,
    cases: parsed.cases.map((c) => ({
      verifyAt: new Date(c.verify_at),
      valid: c.expected_outcome === 'valid',
      expectedTcbStatus: c.expected_tcb_status,
      reason: c.reason,
      checks: Object.fromEntries(Object.entries(c.computed.checks).filter(([name]) => !toolOnly(name))),
    })),
  };
}

/**
 * The claims issue #4 requires `--json` to print exactly as expected.json spells them, as dotted
 * paths. NVIDIA JSON lists nest them per GPU under `gpus.<i>`.
 */
export function requiredClaimPaths(vector: TestdataVector): string[] {
  switch (vector.tee) {
    case 'snp':
      return [
        'version',
        'guest_svn',
        'policy.debug',
        'vmpl',
        'measurement',
        'report_data',
        'host_data',
        'chip_id',
        'product',
        'signer',
        'reported_tcb.bootloader',
        'reported_tcb.tee',
        'reported_tcb.snp',
        'reported_tcb.microcode',
      ];
    case 'tdx':
      return [
        'header.version',
        'body.mrtd',
        'body.rtmr0',
        'body.rtmr1',
        'body.rtmr2',
        'body.rtmr3',
        'body.report_data',
        'body.td_attributes_decoded.debug',
        ...(vector.files.collateral === undefined ? [] : ['tcb.status']),
      ];
    case 'nvidia': {
      const perGpu = ['nonce', 'driver_version', 'vbios_version', 'measurements_parsed'];
      const gpus = vector.claims.gpus;
      if (!Array.isArray(gpus)) return perGpu;
      return gpus.flatMap((_, i) => perGpu.map((p) => `gpus.${i}.${p}`));
    }
    case 'sample':
      return [];
  }
}

/** A path into a claims object: member names (an OID member name contains dots, so no dotted strings). */
export type ClaimPath = readonly string[];

/** Every leaf path of a claims object (arrays of scalars are leaves). */
export function leafClaimPaths(value: unknown, prefix: ClaimPath = []): ClaimPath[] {
  if (typeof value !== 'object' || value === null) return [prefix];
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return [prefix];
  return Object.entries(value).flatMap(([key, v]) => leafClaimPaths(v, [...prefix, key]));
}

/** The value at a path (or a dotted path without OIDs), or undefined. */
export function claimAt(claims: unknown, path: ClaimPath | string): unknown {
  let at: unknown = claims;
  for (const key of typeof path === 'string' ? path.split('.') : path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}
