import { TresorError } from '@tresor/protocol';
import type { ApiKeyRecord, TenantRecord } from '@tresor/storage';
import { windowOf, type CounterStore } from './counter-store.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

export interface LimitDefaults {
  readonly requestsPerMinutePerKey: number;
  readonly requestsPerMinutePerTenant: number;
  readonly tokensPerDayPerKey: number;
  readonly tokensPerDayPerTenant: number;
}

function refusal(
  code: 'RATE_LIMITED' | 'QUOTA_EXHAUSTED',
  message: string,
  endsAtMs: number,
  nowMs: number,
): TresorError {
  const retryAfterSeconds = Math.max(1, Math.ceil((endsAtMs - nowMs) / 1000));
  return new TresorError(code, message, { details: { retryAfterSeconds } });
}

/**
 * Per-key and per-tenant request rates (per minute) and token quotas (per UTC day), over one
 * CounterStore. A key's or tenant's own limits override the configured defaults.
 */
export class UsageLimiter {
  readonly #store: CounterStore;
  readonly #defaults: LimitDefaults;

  constructor(store: CounterStore, defaults: LimitDefaults) {
    this.#store = store;
    this.#defaults = defaults;
  }

  /**
   * Admits one request: refuses when either token quota is used up, then counts the request
   * against both rates.
   * @throws TresorError QUOTA_EXHAUSTED or RATE_LIMITED, with `details.retryAfterSeconds`
   */
  async admit(key: ApiKeyRecord, tenant: TenantRecord, nowMs: number): Promise<void> {
    const day = windowOf(DAY_MS, nowMs);
    const keyQuota = key.tokensPerDay ?? this.#defaults.tokensPerDayPerKey;
    const tenantQuota = tenant.tokensPerDay ?? this.#defaults.tokensPerDayPerTenant;
    const [keyTokens, tenantTokens] = await Promise.all([
      this.#store.read(`tokens:key:${key.id}`, DAY_MS, nowMs),
      this.#store.read(`tokens:tenant:${tenant.id}`, DAY_MS, nowMs),
    ]);
    if (keyTokens >= keyQuota) {
      throw refusal(
        'QUOTA_EXHAUSTED',
        `API key ${key.id} used its ${keyQuota} tokens for today`,
        day.endsAtMs,
        nowMs,
      );
    }
    if (tenantTokens >= tenantQuota) {
      throw refusal(
        'QUOTA_EXHAUSTED',
        `tenant ${tenant.id} used its ${tenantQuota} tokens for today`,
        day.endsAtMs,
        nowMs,
      );
    }
    const minute = windowOf(MINUTE_MS, nowMs);
    const keyRate = key.requestsPerMinute ?? this.#defaults.requestsPerMinutePerKey;
    const tenantRate = tenant.requestsPerMinute ?? this.#defaults.requestsPerMinutePerTenant;
    const [keyCount, tenantCount] = await Promise.all([
      this.#store.increment(`requests:key:${key.id}`, 1, MINUTE_MS, nowMs),
      this.#store.increment(`requests:tenant:${tenant.id}`, 1, MINUTE_MS, nowMs),
    ]);
    if (keyCount > keyRate) {
      throw refusal(
        'RATE_LIMITED',
        `API key ${key.id} may send ${keyRate} requests a minute`,
        minute.endsAtMs,
        nowMs,
      );
    }
    if (tenantCount > tenantRate) {
      throw refusal(
        'RATE_LIMITED',
        `tenant ${tenant.id} may send ${tenantRate} requests a minute`,
        minute.endsAtMs,
        nowMs,
      );
    }
  }

  /** Counts the tokens a finished request used against both quotas. */
  async consume(key: ApiKeyRecord, tokens: number, nowMs: number): Promise<void> {
    if (tokens <= 0) return;
    await Promise.all([
      this.#store.increment(`tokens:key:${key.id}`, tokens, DAY_MS, nowMs),
      this.#store.increment(`tokens:tenant:${key.tenant}`, tokens, DAY_MS, nowMs),
    ]);
  }
}
