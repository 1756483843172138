import type { TrustPlugin } from '../context.js';
import type { InventoryStore } from '../inventory/inventory-store.js';
import type { ReferenceValueStore } from '../reference-values/reference-value-store.js';
import { DOCUMENT_PREFIX, documentRoutes } from './document-routes.js';

/** Publishes the signed reference values and residency inventory (public, `/trust/v0/…`). */
export function documentPlugin(referenceValues: ReferenceValueStore, inventory: InventoryStore): TrustPlugin {
  return async (app) => {
    await app.register(documentRoutes, {
      prefix: DOCUMENT_PREFIX,
      referenceValues: referenceValues.publisher,
      residencyInventory: inventory.publisher,
    });
  };
}
