import { describe, expect, it } from 'vitest';
import { RETENTION_MIN_BYTES, retainFreedHeap, retainFreedHeapFor } from './freed-heap-retention.js';

describe('retainFreedHeap', () => {
  it('runs once per process and settles (the probe buffer is freed when the channel closes)', async () => {
    const first = retainFreedHeap();
    expect(retainFreedHeap()).toBe(first);
    await expect(first).resolves.toBeUndefined();
    // Large passes share that one run; small ones do not start it.
    expect(retainFreedHeapFor(RETENTION_MIN_BYTES)).toBe(first);
    expect(retainFreedHeapFor(RETENTION_MIN_BYTES - 1)).not.toBe(first);
    await expect(retainFreedHeapFor(0)).resolves.toBeUndefined();
  });
});
