import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { adminOperation, type AdminOperation } from '../admin/admin-operation.js';
import type { InventoryStore } from './inventory-store.js';
import { parseHardwareEntries, parseHardwareIds, type HardwareEntry } from './residency-inventory.js';

const entriesRequest = z.strictObject({ hardware: z.unknown() });
const idsRequest = z.strictObject({ ids: z.unknown() });

function parseEntriesRequest(value: unknown): readonly HardwareEntry[] {
  const parsed = entriesRequest.safeParse(value);
  if (!parsed.success) throw new TresorError('INPUT_MALFORMED', 'the request is {"hardware": [entries]}');
  return parseHardwareEntries(parsed.data.hardware);
}

function parseIdsRequest(value: unknown): readonly string[] {
  const parsed = idsRequest.safeParse(value);
  if (!parsed.success) throw new TresorError('INPUT_MALFORMED', 'the request is {"ids": [hardware ids]}');
  return parseHardwareIds(parsed.data.ids);
}

/** The ids a change touched, for its audit record: listed when few, counted when many (records stay small). */
function changedIds(ids: readonly string[]): { changed: number; hardwareIds?: string[] } {
  return ids.length <= 8 ? { changed: ids.length, hardwareIds: [...ids] } : { changed: ids.length };
}

/** `inventory/replace`, `inventory/put`, `inventory/remove`, `inventory/list`. */
export function inventoryOperations(store: InventoryStore): readonly AdminOperation<unknown>[] {
  return [
    adminOperation({
      name: 'inventory/replace',
      summary: 'Replace the whole residency inventory with the given machines.',
      mutates: true,
      parse: parseEntriesRequest,
      target: () => 'residency-inventory',
      run: async (entries, commit) => {
        const next = await store.replace(entries, (doc) =>
          commit({ version: doc.version, machines: doc.body.hardware.length }),
        );
        return { version: next.version, machines: next.body.hardware.length };
      },
    }),
    adminOperation({
      name: 'inventory/put',
      summary: 'Add machines to the residency inventory, or update the entries with the same ids.',
      mutates: true,
      parse: parseEntriesRequest,
      target: () => 'residency-inventory',
      run: async (entries, commit) => {
        const next = await store.put(entries, (doc) =>
          commit({
            version: doc.version,
            machines: doc.body.hardware.length,
            ...changedIds(entries.map((e) => e.id)),
          }),
        );
        return { version: next.version, machines: next.body.hardware.length };
      },
    }),
    adminOperation({
      name: 'inventory/remove',
      summary: 'Withdraw machines from the residency inventory.',
      mutates: true,
      parse: parseIdsRequest,
      target: () => 'residency-inventory',
      run: async (ids, commit) => {
        const next = await store.remove(ids, (doc) =>
          commit({ version: doc.version, machines: doc.body.hardware.length, ...changedIds(ids) }),
        );
        return { version: next.version, machines: next.body.hardware.length };
      },
    }),
    adminOperation({
      name: 'inventory/list',
      summary:
        'The current residency inventory with its document version (also public as a signed document).',
      mutates: false,
      parse: () => null,
      target: () => '',
      run: () =>
        Promise.resolve({
          version: store.document.version,
          jurisdiction: store.jurisdiction,
          hardware: store.document.body.hardware,
        }),
    }),
  ];
}
