import { expect, it } from 'vitest';
import { MemoryCounterStore } from './counter-store.js';
import { counterStoreConformance } from '../conformance/counter-store-conformance.js';

counterStoreConformance('memory', () => Promise.resolve(new MemoryCounterStore()));

it('stays bounded: expired windows go first, then the oldest live ones', async () => {
  const store = new MemoryCounterStore(10);
  for (let i = 0; i < 10; i++) await store.increment(`k${i}`, 1, 1000, 0);
  await store.increment('late', 1, 1000, 5000); // all ten expired: pruned
  expect(store.size).toBe(1);
  for (let i = 0; i < 9; i++) await store.increment(`live${i}`, 1, 1000, 5000);
  await store.increment('overflow', 1, 1000, 5000);
  expect(store.size).toBeLessThanOrEqual(10);
  expect(await store.read('overflow', 1000, 5000)).toBe(1);
});
