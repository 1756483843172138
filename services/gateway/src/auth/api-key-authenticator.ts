import { TresorError } from '@tresor/protocol';
import type { ApiKeyRecord, ApiKeyRepository } from '@tresor/storage';
import { ExpiringCache } from '../expiring-cache.js';
import { apiKeyIdOf, apiKeyMatches } from './api-key-secret.js';

/**
 * Authenticates presented API keys against the stored salted hashes. Every failure is specific
 * (invalid, expired, revoked) but never says whether a key id exists when the secret is wrong.
 * Records are cached briefly, so a revocation takes effect everywhere within `cacheMs`.
 */
export class ApiKeyAuthenticator {
  readonly #now: () => Date;
  readonly #cache: ExpiringCache<ApiKeyRecord | undefined>;

  constructor(keys: ApiKeyRepository, now: () => Date, cacheMs = 5_000) {
    this.#now = now;
    this.#cache = new ExpiringCache((id) => keys.get(id), cacheMs);
  }

  /** Forgets a cached key (after a revocation through this gateway's admin API). */
  forget(id: string): void {
    this.#cache.forget(id);
  }

  /** @throws TresorError API_KEY_INVALID, API_KEY_EXPIRED, API_KEY_REVOKED */
  async authenticate(token: string): Promise<ApiKeyRecord> {
    const id = apiKeyIdOf(token);
    const now = this.#now();
    const record = await this.#cache.get(id, now.getTime());
    if (record === undefined || !apiKeyMatches(token, record.salt, record.hash)) {
      throw new TresorError('API_KEY_INVALID', 'the API key is not valid; check it or ask for a new one');
    }
    if (record.revokedAt !== null && record.revokedAt.getTime() <= now.getTime()) {
      throw new TresorError('API_KEY_REVOKED', `API key ${id} was revoked`, { details: { keyId: id } });
    }
    if (record.expiresAt !== null && record.expiresAt.getTime() <= now.getTime()) {
      throw new TresorError('API_KEY_EXPIRED', `API key ${id} expired at ${record.expiresAt.toISOString()}`, {
        details: { keyId: id },
      });
    }
    return record;
  }
}
