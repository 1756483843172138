import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiKeyRecord, TenantRecord } from '@tresor/storage';
import type { CounterStore } from '../limits/counter-store.js';
import { UsageLimiter } from '../limits/usage-limiter.js';

/** One suite for every CounterStore: in memory in the unit tests, Redis in the integration suite. */
export function counterStoreConformance(name: string, open: () => Promise<CounterStore>): void {
  describe(`counter store conformance: ${name}`, () => {
    let store: CounterStore;
    // A random prefix per test: a shared Redis keeps other tests' counters.
    let prefix: string;
    beforeEach(async () => {
      store = await open();
      prefix = `t${Math.random().toString(36).slice(2)}`;
    });
    afterEach(async () => {
      await store.close();
    });
    const T = Date.UTC(2025, 5, 1, 12, 0, 0);

    it('counts within a window and starts again at zero in the next', async () => {
      expect(await store.increment(`${prefix}:a`, 1, 60_000, T)).toBe(1);
      expect(await store.increment(`${prefix}:a`, 5, 60_000, T + 59_999)).toBe(6);
      expect(await store.read(`${prefix}:a`, 60_000, T + 1)).toBe(6);
      expect(await store.read(`${prefix}:a`, 60_000, T + 60_000)).toBe(0);
      expect(await store.increment(`${prefix}:a`, 2, 60_000, T + 60_000)).toBe(2);
    });

    it('keeps keys and window sizes apart', async () => {
      await store.increment(`${prefix}:a`, 3, 60_000, T);
      expect(await store.read(`${prefix}:b`, 60_000, T)).toBe(0);
      expect(await store.read(`${prefix}:a`, 86_400_000, T)).toBe(0);
      expect(await store.increment(`${prefix}:a`, 0, 60_000, T)).toBe(3);
    });

    it('counts concurrent increments exactly', async () => {
      const totals = await Promise.all(
        Array.from({ length: 50 }, () => store.increment(`${prefix}:c`, 1, 60_000, T)),
      );
      expect(new Set(totals).size).toBe(50);
      expect(Math.max(...totals)).toBe(50);
    });

    it('drives the limiter: rate limits per key and per tenant, quotas per day, with Retry-After', async () => {
      const limiter = new UsageLimiter(store, {
        requestsPerMinutePerKey: 2,
        requestsPerMinutePerTenant: 4,
        tokensPerDayPerKey: 100,
        tokensPerDayPerTenant: 1000,
      });
      const tenant = { id: `${prefix}-t` } as TenantRecord;
      const key = (id: string, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord =>
        ({ id: `${prefix}${id}`, tenant: tenant.id, ...extra }) as ApiKeyRecord;
      await limiter.admit(key('k1'), tenant, T);
      await limiter.admit(key('k1'), tenant, T);
      const third = await limiter.admit(key('k1'), tenant, T + 30_000).then(
        () => undefined,
        (e: unknown) => e as { code: string; details: { retryAfterSeconds: number } },
      );
      expect(third?.code).toBe('RATE_LIMITED');
      expect(third?.details.retryAfterSeconds).toBe(30);
      // The tenant counted three requests (refusals count too), so one more is admitted, then none.
      await limiter.admit(key('k2'), tenant, T);
      const tenantFull = await limiter.admit(key('k3'), tenant, T).then(
        () => 'admitted',
        (e: unknown) => (e as { code: string }).code,
      );
      expect(tenantFull).toBe('RATE_LIMITED');
      // A new minute: admitted again; then the key's quota is used up.
      await limiter.admit(key('k1'), tenant, T + 60_000);
      await limiter.consume(key('k1'), 100, T + 60_000);
      const quota = await limiter.admit(key('k1'), tenant, T + 61_000).then(
        () => undefined,
        (e: unknown) => e as { code: string; details: { retryAfterSeconds: number } },
      );
      expect(quota?.code).toBe('QUOTA_EXHAUSTED');
      expect(quota?.details.retryAfterSeconds).toBe(12 * 3600 - 61);
      // A key's own quota overrides the default.
      await limiter.admit(key('k1', { tokensPerDay: 500 }), tenant, T + 120_000);
    });
  });
}
