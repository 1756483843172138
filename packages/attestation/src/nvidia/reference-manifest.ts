import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { bytesToHex, utf8Decode } from '@tresor/crypto';
import { failed, PASSED, type CheckOutcome } from './check-outcome.js';
import type { MeasurementBlock } from './attestation-report.js';

/**
 * Reference measurements for a GPU, per SPDM measurement index: the values a released driver +
 * VBIOS combination may produce. This is the content of NVIDIA's reference integrity manifests
 * (RIMs: signed SWID/CoRIM documents NVIDIA serves per driver and per VBIOS version, listing for
 * each index its allowed "alternatives") written as plain JSON. Fetching a RIM and checking its
 * signature needs NVIDIA's RIM service, so an operator derives this manifest from a verified RIM
 * and signs it as a Tresor reference value; this verifier only compares.
 *
 * ```json
 * { "description": "H100, driver 550.90.07, VBIOS 96.00.9f.00.01",
 *   "measurements": { "2": ["8048df…"], "3": ["…", "…"] } }
 * ```
 */
export interface NvidiaReferenceManifest {
  readonly description?: string;
  /** Measurement index (decimal, 0-255) → allowed values, lowercase hex. */
  readonly measurements: Readonly<Record<string, readonly string[]>>;
}

const manifestSchema = z.strictObject({
  description: z.string().max(1024).optional(),
  measurements: z.record(
    z.string().regex(/^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/, 'a measurement index 0-255'),
    z
      .array(z.string().regex(/^([0-9a-fA-F]{2})+$/, 'hex bytes'))
      .min(1)
      .transform((values) => values.map((v) => v.toLowerCase())),
  ),
});

/** Parses a reference manifest file; throws INPUT_MALFORMED naming the offending field. */
export function parseNvidiaReferenceManifest(bytes: Uint8Array): NvidiaReferenceManifest {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(bytes));
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', 'The GPU reference manifest is not UTF-8 JSON.', { cause });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : ` at "${issue.path.join('.')}"`;
    // zod reports a bad record key as "Invalid key in record"; say what a key must be.
    const reason = issue?.code === 'invalid_key' ? 'keys must be measurement indices 0-255' : issue?.message;
    throw new TresorError(
      'INPUT_MALFORMED',
      `The GPU reference manifest is invalid${where}: ${reason ?? 'wrong shape'}. ` +
        'Expected {"measurements": {"<index>": ["<hex>", …]}}.',
    );
  }
  const { description, measurements } = parsed.data;
  return description === undefined ? { measurements } : { description, measurements };
}

/** How many mismatching indices a check detail names before it says "and N more". */
const DETAIL_LIMIT = 5;

/**
 * Fails closed in both directions: every index the manifest lists must be present with an allowed
 * value, and every evidence block that measured something (not all zero) must be listed, so a
 * component the manifest does not know about cannot slip through unchecked.
 */
export function compareWithReferenceManifest(
  blocks: readonly MeasurementBlock[],
  manifest: NvidiaReferenceManifest,
): CheckOutcome {
  const byIndex = new Map(blocks.map((b) => [b.index, bytesToHex(b.value)]));
  const problems: string[] = [];
  for (const [index, allowed] of Object.entries(manifest.measurements)) {
    const value = byIndex.get(Number(index));
    if (value === undefined) problems.push(`index ${index} is missing from the evidence`);
    else if (!allowed.includes(value)) problems.push(`index ${index} is ${value}, not an allowed value`);
  }
  for (const block of blocks) {
    if (!Object.hasOwn(manifest.measurements, String(block.index)) && block.value.some((b) => b !== 0)) {
      problems.push(`index ${block.index} is measured but not in the manifest`);
    }
  }
  if (problems.length === 0) return PASSED;
  const shown = problems.slice(0, DETAIL_LIMIT).join('; ');
  const more = problems.length > DETAIL_LIMIT ? `; and ${problems.length - DETAIL_LIMIT} more` : '';
  return failed('GPU_MEASUREMENT_MISMATCH', `${shown}${more}`);
}
