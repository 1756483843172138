import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import type { TeeKind } from '../types.js';
import { schemaProblem } from './schema-problem.js';

/**
 * Reference values: what one release of one Tresor component measures as, in one kind of TEE.
 * A workload is "a released gateway 1.4.0 on SNP" only if its evidence matches such a set.
 */
export interface ReferenceValueSet {
  /** The component: `gateway`, `serving`, `console`, … (a SPIFFE path segment). */
  readonly component: string;
  /** The release label, e.g. `1.4.0` or `2026.03.1+build.7`. */
  readonly release: string;
  readonly tee: TeeKind;
  /**
   * Named measurements as the verifiers report them in AppraisalInput.measurements (snp
   * `measurement`, `host_data`; tdx `mrtd`, `rtmr0`…; sample `measurement`), each with its allowed
   * lowercase-hex values. Never empty: a set without measurements would match anything.
   */
  readonly measurements: Readonly<Record<string, readonly string[]>>;
  /** OCI image digests (`sha256:<64 hex>`) the release runs; empty = not constrained. */
  readonly imageDigests: readonly string[];
  /** Init-data digests (hex SHA-256/384/512, see KBS.md "Init data"); empty = not constrained. */
  readonly initDataHashes: readonly string[];
  /** SHA-256 digests of the models the release may load (sealed model header); empty = any. */
  readonly modelDigests: readonly string[];
}

/** The catalogue key of a set: one entry per component, release and TEE kind. */
export type ReferenceValueKey = Pick<ReferenceValueSet, 'component' | 'release' | 'tee'>;

export const COMPONENT_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
export const RELEASE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const MEASUREMENT_NAME = /^[a-z][a-z0-9_.]{0,63}$/;
/** Sets in one document; a few releases of a few components fit with room to spare. */
export const MAX_REFERENCE_VALUE_SETS = 1000;
const MAX_VALUES = 64;

const lowerHex = (pattern: RegExp, what: string) =>
  z
    .string()
    .max(256)
    .regex(pattern, what)
    .transform((s) => s.toLowerCase());

const hexValue = lowerHex(
  /^(?:[0-9a-fA-F]{2}){1,128}$/,
  'lowercase hex digits (an even number, at most 256)',
);
const sha256Hex = lowerHex(/^[0-9a-fA-F]{64}$/, '64 hex digits (a SHA-256 digest)');
const initDataHash = lowerHex(
  /^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128})$/,
  'a SHA-256, SHA-384 or SHA-512 digest in hex',
);
const imageDigest = z
  .string()
  .regex(/^sha256:[0-9a-fA-F]{64}$/, 'an OCI digest sha256:<64 hex digits>')
  .transform((s) => s.toLowerCase());
const teeKind = z.enum(['snp', 'tdx', 'nvidia', 'sample']);

/** Sorted, without repeats, so equal sets serialise to equal bytes. */
const sortedUnique = <T extends z.ZodType<string>>(item: T) =>
  z
    .array(item)
    .max(MAX_VALUES)
    .transform((values) => [...new Set(values)].sort());

export const referenceValueSetSchema = z.strictObject({
  component: z.string().regex(COMPONENT_PATTERN, 'a component name such as "gateway" (a-z, 0-9, -)'),
  release: z.string().regex(RELEASE_PATTERN, 'a release label such as "1.4.0" (letters, digits, . _ + -)'),
  tee: teeKind,
  measurements: z
    .record(
      z.string().regex(MEASUREMENT_NAME, 'a measurement name such as "mrtd" or "measurement"'),
      sortedUnique(hexValue),
    )
    .refine((m) => Object.keys(m).length > 0, 'at least one measurement (an empty set would match anything)')
    .refine((m) => Object.keys(m).length <= MAX_VALUES, `at most ${MAX_VALUES} measurement names`)
    .refine((m) => Object.values(m).every((values) => values.length > 0), 'every measurement needs a value')
    .transform((m) => Object.fromEntries(Object.entries(m).sort(([a], [b]) => compare(a, b)))),
  imageDigests: sortedUnique(imageDigest).default([]),
  initDataHashes: sortedUnique(initDataHash).default([]),
  modelDigests: sortedUnique(sha256Hex).default([]),
});

export const referenceValueKeySchema = z.strictObject({
  component: referenceValueSetSchema.shape.component,
  release: referenceValueSetSchema.shape.release,
  tee: teeKind,
});

/**
 * Parses a set from an admin request. Throws INPUT_MALFORMED naming the offending member.
 */
export function parseReferenceValueSet(value: unknown): ReferenceValueSet {
  const parsed = referenceValueSetSchema.safeParse(value);
  if (!parsed.success) {
    throw new TresorError('INPUT_MALFORMED', `reference values ${schemaProblem(parsed.error)}`);
  }
  return parsed.data;
}

/** Parses the key of a set (component, release, TEE) from an admin request. Throws INPUT_MALFORMED. */
export function parseReferenceValueKey(value: unknown): ReferenceValueKey {
  const parsed = referenceValueKeySchema.safeParse(value);
  if (!parsed.success) {
    throw new TresorError('INPUT_MALFORMED', `reference value key ${schemaProblem(parsed.error)}`);
  }
  return parsed.data;
}

export function sameKey(a: ReferenceValueKey, b: ReferenceValueKey): boolean {
  return a.component === b.component && a.release === b.release && a.tee === b.tee;
}

/** Catalogue order: by component, then release, then TEE kind (code-unit order, locale-free). */
export function compareKeys(a: ReferenceValueKey, b: ReferenceValueKey): number {
  return compare(a.component, b.component) || compare(a.release, b.release) || compare(a.tee, b.tee);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
