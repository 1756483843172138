import { describe } from 'vitest';
import { auditSuite } from './audit-suite.js';
import { durabilitySuite } from './durability-suite.js';
import { replaySuite } from './replay-suite.js';
import { retentionSuite } from './retention-suite.js';
import { schemaSuite } from './schema-suite.js';
import type { StorageFixture } from './storage-fixture.js';
import { tamperSuite } from './tamper-suite.js';
import { tenantsSuite } from './tenants-suite.js';
import { usageSuite } from './usage-suite.js';

/**
 * The one conformance suite every storage backend runs: SQLite in the unit tests, PostgreSQL in
 * the integration suite (TRESOR_TEST_PG_URL). Each test gets a fresh, empty database.
 */
export function storageConformance(fixture: StorageFixture): void {
  describe(`storage conformance: ${fixture.name}`, () => {
    schemaSuite(fixture);
    durabilitySuite(fixture);
    auditSuite(fixture);
    tamperSuite(fixture);
    usageSuite(fixture);
    retentionSuite(fixture);
    replaySuite(fixture);
    tenantsSuite(fixture);
  });
}
