import { describe, it } from 'vitest';
import { RedisCounterStore } from '@tresor/gateway';
import { counterStoreConformance } from '../../services/gateway/src/conformance/counter-store-conformance.js';

/**
 * The gateway's rate-limit and quota counters against a real Redis (scripts/test-integration.sh
 * starts a private redis-server on 127.0.0.1 and sets TRESOR_TEST_REDIS_URL): the same conformance
 * suite the in-memory store runs in the unit tests.
 */
const url = process.env.TRESOR_TEST_REDIS_URL;
if (url === undefined || url === '') {
  describe('counter store conformance: redis', () => {
    it.skip('needs TRESOR_TEST_REDIS_URL (npm run test:integration starts a Redis)', () => undefined);
  });
} else {
  counterStoreConformance('redis', () => RedisCounterStore.connect(url));
}
