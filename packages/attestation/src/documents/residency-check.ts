import { TresorError } from '@tresor/protocol';
import type { AppraisalInput } from '../types.js';
import type { SampleVerifyKey } from '../sample/index.js';
import type { HardwareEntry, ResidencyInventory } from './residency-inventory.js';

/** The jurisdiction Tresor processes data in unless configured otherwise (DESIGN.md §1). */
export const DEFAULT_JURISDICTION = 'CH';

/** Where a workload runs, once every one of its hardware ids was found in the inventory. */
export interface ResidencyFinding {
  readonly jurisdiction: string;
  /** The inventory entries of the workload's hardware, in the order the ids were given. */
  readonly hardware: readonly HardwareEntry[];
}

/**
 * The sample TEE's "machine": its installation key, the one thing that identifies a local stack.
 * The sample verifier reports no hardware id, so the caller adds this one for sample evidence.
 */
export function sampleMachineId(verifyKey: SampleVerifyKey): string {
  return verifyKey.hex;
}

/**
 * The ids to look up for verified evidence: the verifier's hardware ids, and for the sample TEE its
 * machine id when one is known. All-zero ids (an SNP report with MASK_CHIP_ID, a VLEK-signed
 * report) identify no machine and are left out, as appraisal does.
 */
export function residencyIds(
  input: Pick<AppraisalInput, 'tee' | 'hardwareIds'>,
  sampleMachine?: string,
): readonly string[] {
  const ids = input.tee === 'sample' && sampleMachine !== undefined ? [sampleMachine] : input.hardwareIds;
  return ids.map((id) => id.toLowerCase()).filter((id) => !/^0*$/.test(id));
}

/**
 * Refuses a workload unless it names at least one hardware id and every id it names is in the
 * inventory under `jurisdiction`. Fails closed: no id, an unknown id, or an id listed elsewhere is
 * a violation.
 *
 * @throws TresorError RESIDENCY_VIOLATION
 */
export function requireResident(
  inventory: ResidencyInventory,
  hardwareIds: readonly string[],
  jurisdiction: string = DEFAULT_JURISDICTION,
): ResidencyFinding {
  const violation = (message: string, details: Record<string, string>): TresorError =>
    new TresorError('RESIDENCY_VIOLATION', message, { details: { jurisdiction, ...details } });
  if (hardwareIds.length === 0) {
    throw violation('the evidence names no hardware id, so where it runs cannot be established', {});
  }
  const byId = new Map(inventory.hardware.map((entry) => [entry.id, entry]));
  const hardware = hardwareIds.map((raw) => {
    const id = raw.toLowerCase();
    const entry = byId.get(id);
    // Ids are public identifiers of machines, not secrets; a prefix is enough to find the machine.
    const shown = `${id.slice(0, 16)}…`;
    if (entry === undefined)
      throw violation(`hardware ${shown} is not in the residency inventory`, { hardwareId: id });
    if (entry.jurisdiction !== jurisdiction) {
      throw violation(`hardware ${shown} stands in ${entry.jurisdiction}, not ${jurisdiction}`, {
        hardwareId: id,
      });
    }
    return entry;
  });
  return { jurisdiction, hardware };
}

/** The ids allowed under `jurisdiction`, for AppraisalPolicy.hardwareIds. */
export function residentHardwareIds(
  inventory: ResidencyInventory,
  jurisdiction: string = DEFAULT_JURISDICTION,
): string[] {
  return inventory.hardware.filter((e) => e.jurisdiction === jurisdiction).map((e) => e.id);
}
