import { TresorError } from '@tresor/protocol';
import {
  SignedDocumentPublisher,
  type BeforePublish,
  type PublishedDocument,
  type SignedDocumentPublisherOptions,
} from '../signed-documents/signed-document-publisher.js';
import { DEFAULT_JURISDICTION, requireResident, type ResidencyFinding } from './residency-check.js';
import {
  MAX_INVENTORY_ENTRIES,
  residencyInventoryCodec,
  sortedUnique,
  type HardwareEntry,
  type ResidencyInventory,
} from './residency-inventory.js';

export interface InventoryStoreOptions extends Omit<
  SignedDocumentPublisherOptions<ResidencyInventory>,
  'codec'
> {
  /** The jurisdiction data may be processed in; default `CH`. */
  readonly jurisdiction?: string;
}

/**
 * The residency inventory of this trust service: changed only through signed admin requests,
 * published as a signed, versioned document, and consulted before every key release, token and
 * mesh certificate.
 */
export class InventoryStore {
  readonly #publisher: SignedDocumentPublisher<ResidencyInventory>;
  readonly jurisdiction: string;

  private constructor(publisher: SignedDocumentPublisher<ResidencyInventory>, jurisdiction: string) {
    this.#publisher = publisher;
    this.jurisdiction = jurisdiction;
  }

  static async open(options: InventoryStoreOptions): Promise<InventoryStore> {
    const publisher = await SignedDocumentPublisher.open({ ...options, codec: residencyInventoryCodec });
    return new InventoryStore(publisher, options.jurisdiction ?? DEFAULT_JURISDICTION);
  }

  get document(): PublishedDocument<ResidencyInventory> {
    return this.#publisher.current;
  }

  get publisher(): SignedDocumentPublisher<ResidencyInventory> {
    return this.#publisher;
  }

  /** Replaces the whole inventory. */
  replace(
    entries: readonly HardwareEntry[],
    beforePublish?: BeforePublish<ResidencyInventory>,
  ): Promise<PublishedDocument<ResidencyInventory>> {
    return this.#publisher.update(() => ({ hardware: unique(entries) }), beforePublish);
  }

  /** Adds machines, or updates the entries with the same ids. */
  put(
    entries: readonly HardwareEntry[],
    beforePublish?: BeforePublish<ResidencyInventory>,
  ): Promise<PublishedDocument<ResidencyInventory>> {
    return this.#publisher.update(({ hardware }) => {
      const changed = new Set(entries.map((e) => e.id));
      return { hardware: unique([...hardware.filter((e) => !changed.has(e.id)), ...entries]) };
    }, beforePublish);
  }

  /** Withdraws machines. @throws TresorError ADMIN_TARGET_NOT_FOUND when an id is not listed. */
  remove(
    ids: readonly string[],
    beforePublish?: BeforePublish<ResidencyInventory>,
  ): Promise<PublishedDocument<ResidencyInventory>> {
    return this.#publisher.update(({ hardware }) => {
      const listed = new Set(hardware.map((e) => e.id));
      const missing = ids.find((id) => !listed.has(id));
      if (missing !== undefined) {
        throw new TresorError(
          'ADMIN_TARGET_NOT_FOUND',
          `hardware ${missing} is not in the residency inventory`,
        );
      }
      const withdrawn = new Set(ids);
      return { hardware: hardware.filter((e) => !withdrawn.has(e.id)) };
    }, beforePublish);
  }

  /** Refuses hardware outside the inventory or the jurisdiction (RESIDENCY_VIOLATION). */
  requireResident(hardwareIds: readonly string[]): ResidencyFinding {
    return requireResident(this.#publisher.current.body, hardwareIds, this.jurisdiction);
  }
}

function unique(entries: readonly HardwareEntry[]): readonly HardwareEntry[] {
  if (entries.length > MAX_INVENTORY_ENTRIES) {
    throw new TresorError(
      'INPUT_MALFORMED',
      `the residency inventory holds at most ${MAX_INVENTORY_ENTRIES} machines`,
    );
  }
  return sortedUnique(
    entries,
    (id) => new TresorError('INPUT_MALFORMED', `inventory entries list ${id} twice`),
  );
}
