import { TresorError, type ErrorCode } from '@tresor/protocol';
import {
  appraise,
  loadAppraisalPolicy,
  verifyAttestation,
  type AppraisalResult,
  type Checks,
  type TeeKind,
  SNP_PRODUCTS,
  type SnpProduct,
} from '@tresor/attestation';
import { createNodeVerifiers } from '@tresor/attestation/node';
import type { CliIo } from '../io.js';
import {
  parseRfc3339,
  parseTeeKind,
  readAttestationFiles,
  readInputFile,
  readJsonFile,
} from './attest-inputs.js';

/** Options of `tresor attest verify`, as commander hands them over (file flags by camelCase role). */
export interface AttestVerifyOptions extends Readonly<Record<string, unknown>> {
  readonly tee?: string;
  readonly at?: string;
  readonly policy?: string;
  readonly runtimeData?: string;
  readonly evidenceTime?: string;
  readonly product?: string;
  readonly gpuNonce?: string;
  readonly allowUnsignedSample?: boolean;
  readonly json?: boolean;
}

/** What `--json` prints (issue #4): the hardware verdict, and with --policy the appraisal. */
export interface AttestVerifyOutput {
  readonly tee: TeeKind;
  readonly valid: boolean;
  readonly error: ErrorCode | null;
  readonly checks: Checks;
  readonly claims: unknown;
  readonly appraisal?: AppraisalResult;
}

function parseProduct(text: string): SnpProduct {
  const product = SNP_PRODUCTS.find((p) => p.toLowerCase() === text.toLowerCase());
  if (product === undefined) {
    throw new TresorError(
      'USAGE_INVALID',
      `--product must be one of ${SNP_PRODUCTS.join(', ')}, not "${text}"`,
    );
  }
  return product;
}

/** The verification time: --at, or now from the CLI's clock. */
export function verificationTime(options: AttestVerifyOptions, io: CliIo): Date {
  return options.at === undefined ? io.now() : parseRfc3339(options.at, '--at');
}

/**
 * Verifies one piece of evidence with its endorsements at `--at` (default: now), and appraises it
 * when `--policy` is given. Unusable input throws (exit 2); a verification or policy failure is
 * returned in the output (the command exits 1).
 */
export async function attestVerify(
  options: AttestVerifyOptions,
  io: CliIo,
  now: Date,
): Promise<AttestVerifyOutput> {
  const tee = options.tee === undefined ? undefined : parseTeeKind(options.tee);
  const policy =
    options.policy === undefined
      ? undefined
      : loadAppraisalPolicy(readInputFile(io, options.policy, '--policy'));
  const runtimeData =
    options.runtimeData === undefined ? undefined : readJsonFile(io, options.runtimeData, '--runtime-data');
  const evidenceTime =
    options.evidenceTime === undefined ? undefined : parseRfc3339(options.evidenceTime, '--evidence-time');
  if (policy === undefined && (runtimeData !== undefined || evidenceTime !== undefined)) {
    throw new TresorError(
      'USAGE_INVALID',
      '--runtime-data and --evidence-time are appraisal inputs: pass --policy too',
    );
  }
  const verification = await verifyAttestation({
    files: readAttestationFiles(io, options),
    now,
    // Signatures on node:crypto: the CLI runs in Node, where it is the faster implementation.
    verifiers: createNodeVerifiers(),
    ...(tee === undefined ? {} : { tee }),
    ...(options.product === undefined ? {} : { snpProduct: parseProduct(options.product) }),
    ...(options.gpuNonce === undefined ? {} : { gpuNonce: options.gpuNonce }),
    ...(options.allowUnsignedSample === true ? { acceptUnsignedSample: true } : {}),
  });
  const { result } = verification;
  if (policy === undefined) {
    return {
      tee: verification.tee,
      valid: result.valid,
      error: result.error,
      checks: result.checks,
      claims: result.claims,
    };
  }
  const appraisal = await appraise([result], policy, {
    now,
    ...(runtimeData === undefined ? {} : { runtimeData }),
    ...(evidenceTime === undefined ? {} : { evidenceTime }),
  });
  const submod = Object.values(appraisal.ear.submods)[0]!;
  return {
    tee: verification.tee,
    valid: appraisal.errors.length === 0,
    error: appraisal.error,
    checks: submod['ear.tresor.checks'],
    claims: result.claims,
    appraisal,
  };
}

/** The refusal to report for an invalid output: the first failed check's code, named with its detail. */
export function refusal(output: AttestVerifyOutput): TresorError | null {
  if (output.valid || output.error === null) return null;
  const [name, check] = Object.entries(output.checks).find(([, c]) => !c.ok && c.code === output.error) ?? [];
  const what = name === undefined ? 'verification failed' : `check ${name} failed`;
  return new TresorError(output.error, check?.detail === undefined ? what : `${what}: ${check.detail}`);
}
