import { describe, expect, it } from 'vitest';
import { ReplayCache } from './replay-cache.js';

const enc = (n: number): Uint8Array => new TextEncoder().encode(`enc-${String(n)}`);

describe('ReplayCache', () => {
  it('refuses an enc seen within the window, and accepts it once the window has passed', () => {
    const cache = new ReplayCache(1_000, 10);
    cache.use(enc(1), 0);
    expect(() => {
      cache.use(enc(1), 999);
    }).toThrow(expect.objectContaining({ code: 'OHTTP_REQUEST_REPLAYED' }) as Error);
    cache.use(enc(1), 1_000);
  });

  it('forgets expired entries as time passes, not only when full', () => {
    const cache = new ReplayCache(1_000, 1_000_000);
    for (let i = 0; i < 5_000; i++) cache.use(enc(i), i);
    // At t = 4,999 only the last window (t > 3,999) is live.
    expect(cache.size).toBe(1_000);
    expect(() => {
      cache.use(enc(4_500), 5_000);
    }).toThrow(expect.objectContaining({ code: 'OHTTP_REQUEST_REPLAYED' }) as Error);
  });

  it('refuses with SERVING_BUSY when full of live entries, never forgetting one early', () => {
    const cache = new ReplayCache(1_000, 3);
    for (let i = 0; i < 3; i++) cache.use(enc(i), 0);
    expect(() => {
      cache.use(enc(9), 10);
    }).toThrow(expect.objectContaining({ code: 'SERVING_BUSY' }) as Error);
    expect(() => {
      cache.use(enc(0), 10);
    }).toThrow(expect.objectContaining({ code: 'OHTTP_REQUEST_REPLAYED' }) as Error);
    cache.use(enc(9), 1_000);
  });
});
