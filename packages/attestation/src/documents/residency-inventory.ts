import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { schemaProblem } from './schema-problem.js';
import {
  verifySignedDocument,
  type DocumentPin,
  type VerifySignedDocumentOptions,
} from './verify-signed-document.js';

/**
 * The residency inventory: the hardware allowed to process data, each machine with the
 * jurisdiction it stands in. Key release, tokens and mesh certificates go only to workloads whose
 * every hardware id is listed under the required jurisdiction (Switzerland, `CH`).
 */

/**
 * What an id identifies, as the verifiers report it in AppraisalInput.hardwareIds: the SNP
 * CHIP_ID (or VCEK hwID), the TDX PCK certificate's PPID, an NVIDIA GPU's device certificate
 * serial, or a sample TEE installation (its sample public key, see sampleMachineId).
 */
export const HARDWARE_KINDS = ['snp-chip', 'tdx-platform', 'gpu', 'sample-machine'] as const;
export type HardwareKind = (typeof HARDWARE_KINDS)[number];

export interface HardwareEntry {
  /** Lowercase hex, exactly as the verifier reports it. */
  readonly id: string;
  readonly kind: HardwareKind;
  /** ISO 3166-1 alpha-2 country code of where the machine stands, e.g. `CH`. */
  readonly jurisdiction: string;
  /** Where in that country (data centre, rack); free text for people, empty when not given. */
  readonly site: string;
}

export interface ResidencyInventory {
  /** In id order, one entry per id. */
  readonly hardware: readonly HardwareEntry[];
}

/** Machines in one inventory; a fleet of this size is far beyond one Tresor installation. */
export const MAX_INVENTORY_ENTRIES = 10_000;

export const JURISDICTION_PATTERN = /^[A-Z]{2}$/;

export const hardwareEntrySchema = z.strictObject({
  id: z
    .string()
    .regex(
      /^(?:[0-9a-fA-F]{2}){4,128}$/,
      'a hardware id in hex (8 to 256 digits, as the verifier reports it)',
    )
    .refine((id) => !/^0+$/.test(id), 'an all-zero id (a masked SNP chip id) identifies no machine')
    .transform((id) => id.toLowerCase()),
  kind: z.enum(HARDWARE_KINDS),
  jurisdiction: z.string().regex(JURISDICTION_PATTERN, 'an ISO 3166-1 alpha-2 country code such as "CH"'),
  site: z
    .string()
    .max(200)
    // eslint-disable-next-line no-control-regex
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'printable text')
    .default(''),
});

const entriesSchema = z.array(hardwareEntrySchema).max(MAX_INVENTORY_ENTRIES);
const idsSchema = z.array(hardwareEntrySchema.shape.id).min(1).max(MAX_INVENTORY_ENTRIES);

/** Entries from an admin request; refuses repeated ids. Throws INPUT_MALFORMED. */
export function parseHardwareEntries(value: unknown): readonly HardwareEntry[] {
  const parsed = entriesSchema.safeParse(value);
  if (!parsed.success)
    throw new TresorError('INPUT_MALFORMED', `inventory entries ${schemaProblem(parsed.error)}`);
  return sortHardwareEntries(
    parsed.data,
    (id) => new TresorError('INPUT_MALFORMED', `inventory entries list ${id} twice`),
  );
}

/** Hardware ids from an admin request (to remove). Throws INPUT_MALFORMED. */
export function parseHardwareIds(value: unknown): readonly string[] {
  const parsed = idsSchema.safeParse(value);
  if (!parsed.success)
    throw new TresorError('INPUT_MALFORMED', `hardware ids ${schemaProblem(parsed.error)}`);
  return [...new Set(parsed.data)];
}

/** The body out of a document's claims. Throws SIGNED_DOCUMENT_INVALID. */
export function parseResidencyInventory(claims: Readonly<Record<string, unknown>>): ResidencyInventory {
  const parsed = z.object({ hardware: entriesSchema }).safeParse(claims);
  if (!parsed.success) {
    throw new TresorError(
      'SIGNED_DOCUMENT_INVALID',
      `the residency inventory document: ${schemaProblem(parsed.error)}`,
    );
  }
  return {
    hardware: sortHardwareEntries(
      parsed.data.hardware,
      (id) =>
        new TresorError('SIGNED_DOCUMENT_INVALID', `the residency inventory document lists ${id} twice`),
    ),
  };
}

/** Entries in id order; refuses an id listed twice with the error `repeated` makes. */
export function sortHardwareEntries(
  entries: readonly HardwareEntry[],
  repeated: (id: string) => TresorError,
): readonly HardwareEntry[] {
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const twice = sorted.find((e, i) => i > 0 && sorted[i - 1]?.id === e.id);
  if (twice !== undefined) throw repeated(twice.id);
  return sorted;
}

/** A verified inventory document, as a client pins it. */
export interface VerifiedResidencyInventory {
  readonly version: number;
  readonly issuedAt: Date;
  readonly issuer: string;
  readonly keyId: string;
  readonly body: ResidencyInventory;
  readonly pin: DocumentPin;
}

/**
 * Verifies a residency inventory document (signature with the pinned keys, type, no rollback)
 * and parses its entries.
 *
 * @throws TresorError SIGNED_DOCUMENT_INVALID, SIGNED_DOCUMENT_ROLLBACK
 */
export async function verifyResidencyInventoryDocument(
  jws: string,
  options: Omit<VerifySignedDocumentOptions, 'kind'>,
): Promise<VerifiedResidencyInventory> {
  const verified = await verifySignedDocument(jws, { ...options, kind: 'residency-inventory' });
  return {
    version: verified.claims.version,
    issuedAt: verified.issuedAt,
    issuer: verified.claims.iss,
    keyId: verified.keyId,
    body: parseResidencyInventory(verified.claims),
    pin: verified.pin,
  };
}
