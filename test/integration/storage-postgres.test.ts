import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '@tresor/cli';
import { AuditLog, SqlAuditRepository, openMetadataDatabase, type SqlClient } from '@tresor/storage';
import { storageConformance } from '../../packages/storage/src/conformance/storage-conformance.js';
import {
  postgresFixture,
  type TestDatabase,
} from '../../packages/storage/src/conformance/storage-fixture.js';
import { generateTestSigner } from '../../packages/storage/src/conformance/test-signer.js';
import { captureIo } from '../support/cli-io.js';

/**
 * The storage conformance suite against PostgreSQL: scripts/test-integration.sh starts a private
 * cluster on 127.0.0.1 and exports its URL. In CI it is always set; elsewhere the suite is skipped.
 */
const url = process.env.TRESOR_TEST_PG_URL ?? '';

it.runIf(url === '' && process.env.CI !== undefined)(
  'has a PostgreSQL server in CI (TRESOR_TEST_PG_URL)',
  () => {
    expect.fail('TRESOR_TEST_PG_URL is not set; run the suite through `npm run test:integration`');
  },
);

describe.skipIf(url === '')('PostgreSQL storage', () => {
  storageConformance(postgresFixture(url));

  describe('tresor audit verify --db', () => {
    const fixture = postgresFixture(url);
    const signer = generateTestSigner('sig-audit-pg');
    let db: TestDatabase;
    let client: SqlClient;
    let dir: string;
    let schema: string;
    beforeAll(async () => {
      db = await fixture.create();
      schema = db.target.kind === 'postgres' ? (db.target.schema ?? '') : '';
      client = await openMetadataDatabase(db.target);
      const log = new AuditLog(new SqlAuditRepository(client), { signer, checkpointEvery: 4 });
      for (let n = 1; n <= 9; n++) {
        await log.append({
          actor: { type: 'workload', id: 'spiffe://tresor/trust' },
          action: 'keys.release',
          target: `tenant:t${n}`,
          outcome: 'success',
        });
      }
      dir = mkdtempSync(join(tmpdir(), 'tresor-pg-audit-'));
      writeFileSync(join(dir, 'audit.jwk'), JSON.stringify(signer.publicJwk));
    });
    afterAll(async () => {
      await client.close();
      await db.dispose();
      rmSync(dir, { recursive: true, force: true });
    });

    const verify = async (...extra: string[]) => {
      const io = captureIo();
      const code = await run(
        ['audit', 'verify', '--db', url, '--schema', schema, '--public-key', 'audit.jwk', ...extra],
        {
          ...io,
          cwd: dir,
        },
      );
      return { code, out: io.out(), err: io.err() };
    };

    it('exits 0 on the intact log, 1 naming an edited record, 2 for a schema without Tresor tables', async () => {
      const intact = await verify('--json');
      expect(intact.code).toBe(0);
      expect(JSON.parse(intact.out)).toMatchObject({
        intact: true,
        records: 9,
        newestCheckpoint: 8,
        unsignedRecords: 1,
      });

      await client.execute('DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records');
      await client.execute("UPDATE audit_records SET outcome = 'denied' WHERE seq = 6");
      const edited = await verify();
      expect(edited.code).toBe(1);
      expect(edited.err).toMatch(/^error AUDIT_CHAIN_BROKEN: record 6 was edited/);

      const io = captureIo();
      const missing = await run(
        ['audit', 'verify', '--db', url, '--schema', 'no_such_schema', '--public-key', 'audit.jwk'],
        { ...io, cwd: dir },
      );
      expect(missing).toBe(2);
      expect(io.err()).toMatch(/^error STORAGE_SCHEMA_UNSUPPORTED: /);
    });
  });
});
