import { parseResidencyInventory, type ResidencyInventory } from '@tresor/attestation';
import type { DocumentBodyCodec } from '../signed-documents/signed-document-publisher.js';

/** Parsing and verification moved to @tresor/attestation (documents/); publishing stays here. */
export {
  HARDWARE_KINDS,
  JURISDICTION_PATTERN,
  MAX_INVENTORY_ENTRIES,
  hardwareEntrySchema,
  parseHardwareEntries,
  parseHardwareIds,
  parseResidencyInventory,
  sortHardwareEntries as sortedUnique,
  verifyResidencyInventoryDocument,
  type HardwareEntry,
  type HardwareKind,
  type ResidencyInventory,
  type VerifiedResidencyInventory,
} from '@tresor/attestation';

export const residencyInventoryCodec: DocumentBodyCodec<ResidencyInventory> = {
  kind: 'residency-inventory',
  empty: { hardware: [] },
  toClaims: (body) => ({ hardware: body.hardware }),
  fromClaims: parseResidencyInventory,
};
