import { describe, expect, it } from 'vitest';
import { ExpiringCache } from './expiring-cache.js';

function counted(values: Record<string, string | undefined>) {
  const loads: string[] = [];
  const cache = (ttlMs: number, maxEntries?: number) =>
    new ExpiringCache(
      (key) => {
        loads.push(key);
        return Promise.resolve(values[key]);
      },
      ttlMs,
      maxEntries,
    );
  return { loads, cache };
}

describe('ExpiringCache', () => {
  it('loads a key once within its time to live', async () => {
    const { loads, cache } = counted({ a: 'A' });
    const c = cache(5_000);
    expect(await c.get('a', 1_000)).toBe('A');
    expect(await c.get('a', 5_999)).toBe('A');
    expect(loads).toEqual(['a']);
  });

  it('loads again once the time to live has passed (a change takes effect within it)', async () => {
    const values: Record<string, string | undefined> = { a: 'old' };
    const { loads, cache } = counted(values);
    const c = cache(5_000);
    expect(await c.get('a', 0)).toBe('old');
    values.a = 'new';
    expect(await c.get('a', 4_999)).toBe('old');
    expect(await c.get('a', 5_000)).toBe('new');
    expect(loads).toEqual(['a', 'a']);
  });

  it('remembers absent answers too, for the same time', async () => {
    const { loads, cache } = counted({});
    const c = cache(1_000);
    expect(await c.get('missing', 0)).toBeUndefined();
    expect(await c.get('missing', 500)).toBeUndefined();
    expect(loads).toEqual(['missing']);
  });

  it('forget drops one key at once and leaves the others cached', async () => {
    const { loads, cache } = counted({ a: 'A', b: 'B' });
    const c = cache(60_000);
    await c.get('a', 0);
    await c.get('b', 0);
    c.forget('a');
    await c.get('a', 1);
    await c.get('b', 1);
    expect(loads).toEqual(['a', 'b', 'a']);
  });

  it('is bounded: past maxEntries it starts over instead of growing', async () => {
    const { loads, cache } = counted({ a: 'A', b: 'B', c: 'C' });
    const c = cache(60_000, 2);
    await c.get('a', 0);
    await c.get('b', 0);
    await c.get('c', 0);
    await c.get('a', 0);
    expect(loads).toEqual(['a', 'b', 'c', 'a']);
  });

  it('a failed load is not cached: the error reaches the caller and the next call loads again', async () => {
    let fail = true;
    const c = new ExpiringCache(
      (key) => (fail ? Promise.reject(new Error(`no ${key}`)) : Promise.resolve(key)),
      5_000,
    );
    await expect(c.get('x', 0)).rejects.toThrow('no x');
    fail = false;
    expect(await c.get('x', 1)).toBe('x');
  });
});
