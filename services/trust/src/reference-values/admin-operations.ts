import { adminOperation, type AdminOperation } from '../admin/admin-operation.js';
import { parseReferenceValueKey, parseReferenceValueSet } from './reference-value-set.js';
import type { ReferenceValueStore } from './reference-value-store.js';

/** `reference-values/put`, `reference-values/remove`, `reference-values/list`. */
export function referenceValueOperations(store: ReferenceValueStore): readonly AdminOperation<unknown>[] {
  return [
    adminOperation({
      name: 'reference-values/put',
      summary:
        'Add a released set of measurements, or replace the set of the same component, release and TEE kind.',
      mutates: true,
      parse: parseReferenceValueSet,
      target: (set) => `reference-values:${set.component}/${set.release}/${set.tee}`,
      run: async (set, commit) => {
        const next = await store.put(set, (doc) =>
          commit({ version: doc.version, measurements: Object.keys(set.measurements).length }),
        );
        return { version: next.version };
      },
    }),
    adminOperation({
      name: 'reference-values/remove',
      summary: 'Withdraw the reference values of one component release on one TEE kind.',
      mutates: true,
      parse: parseReferenceValueKey,
      target: (key) => `reference-values:${key.component}/${key.release}/${key.tee}`,
      run: async (key, commit) => {
        const next = await store.remove(key, (doc) => commit({ version: doc.version }));
        return { version: next.version };
      },
    }),
    adminOperation({
      name: 'reference-values/list',
      summary: 'The current reference values with their document version (also public as a signed document).',
      mutates: false,
      parse: () => null,
      target: () => '',
      run: () => Promise.resolve({ version: store.document.version, referenceValues: store.sets }),
    }),
  ];
}
