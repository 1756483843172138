import { TresorError } from '@tresor/protocol';
import type { TeeKind } from '../types.js';
import type { ReferenceValueKey, ReferenceValueSet } from './reference-value-set.js';

/** What an appraised workload presented, as the matcher needs it (all hex lowercase or not: compared case-blind). */
export interface MeasuredWorkload {
  readonly tee: TeeKind;
  /** AppraisalInput.measurements of the verified evidence. */
  readonly measurements: Readonly<Record<string, string>>;
  /** Digest of the init data the workload presented, if any. */
  readonly initDataHash?: string | null;
  /** The OCI image digest the workload runs, if the evidence or init data names one. */
  readonly imageDigest?: string | null;
}

/**
 * Whether `workload` is an instance of `set`: same TEE kind, every measurement the set names is in
 * the evidence with one of its allowed values, and every other constraint the set names (init
 * data, image) is met. A constraint the workload cannot show is not met (fail closed).
 */
export function matchesReferenceValueSet(set: ReferenceValueSet, workload: MeasuredWorkload): boolean {
  if (set.tee !== workload.tee) return false;
  for (const [name, allowed] of Object.entries(set.measurements)) {
    const seen = Object.prototype.hasOwnProperty.call(workload.measurements, name)
      ? workload.measurements[name]
      : undefined;
    if (seen === undefined || !allowed.includes(seen.toLowerCase())) return false;
  }
  return (
    satisfies(set.initDataHashes, workload.initDataHash) && satisfies(set.imageDigests, workload.imageDigest)
  );
}

function satisfies(allowed: readonly string[], seen: string | null | undefined): boolean {
  if (allowed.length === 0) return true;
  return typeof seen === 'string' && allowed.includes(seen.toLowerCase());
}

/** Every set the workload is an instance of, in catalogue order. */
export function matchReferenceValues(
  sets: readonly ReferenceValueSet[],
  workload: MeasuredWorkload,
): readonly ReferenceValueSet[] {
  return sets.filter((set) => matchesReferenceValueSet(set, workload));
}

/**
 * The release the workload is, optionally of a given component; refuses anything that matches no
 * released set. When several releases match (two releases with equal measurements), the last in
 * catalogue order is named; all of them are equally allowed.
 *
 * @throws TresorError MEASUREMENT_NOT_ALLOWED
 */
export function requireReleasedWorkload(
  sets: readonly ReferenceValueSet[],
  workload: MeasuredWorkload,
  component?: string,
): ReferenceValueKey {
  const matches = matchReferenceValues(sets, workload).filter(
    (set) => component === undefined || set.component === component,
  );
  const match = matches.at(-1);
  if (match === undefined) {
    const of = component === undefined ? 'any released component' : `a released ${component}`;
    throw new TresorError(
      'MEASUREMENT_NOT_ALLOWED',
      `the ${workload.tee} workload's measurements do not match ${of} in the reference values`,
      { details: { tee: workload.tee, ...(component === undefined ? {} : { component }) } },
    );
  }
  return { component: match.component, release: match.release, tee: match.tee };
}
