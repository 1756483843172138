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

it('drops expired windows as new ones are written, long before it is full', async () => {
  const store = new MemoryCounterStore();
  const minute = 60_000;
  const day = 24 * 60 * minute;
  const t0 = 1_000 * day;
  await store.increment('tokens', 7, day, t0);
  for (let m = 0; m < 600; m++) {
    await store.increment('requests:key', 1, minute, t0 + m * minute);
    await store.increment('requests:tenant', 1, minute, t0 + m * minute + 1);
  }
  // The two live minute windows and the day window; not one entry per minute per key.
  expect(store.size).toBe(3);
  expect(await store.read('tokens', day, t0 + 599 * minute)).toBe(7);
  expect(await store.read('requests:key', minute, t0 + 599 * minute)).toBe(1);
  // Between sweeps (at most one a minute) a live window is never dropped.
  await store.increment('burst', 5, 1000, t0 + 600 * minute);
  for (let i = 0; i < 50; i++) await store.increment(`other${i}`, 1, 1000, t0 + 600 * minute + 10);
  expect(await store.read('burst', 1000, t0 + 600 * minute + 10)).toBe(5);
});
