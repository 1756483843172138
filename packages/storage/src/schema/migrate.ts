import { TresorError } from '@tresor/protocol';
import type { SqlClient, SqlExecutor } from '../sql/sql-client.js';
import { integerValue } from '../sql/row-values.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

export interface MigrationResult {
  /** Schema version before the call (0: an empty database). */
  readonly from: number;
  readonly to: number;
  /** Versions this call applied; empty when the database was already current. */
  readonly applied: readonly number[];
}

const SCHEMA_TABLE = `CREATE TABLE IF NOT EXISTS tresor_schema (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`;

async function tableExists(tx: SqlExecutor, table: string): Promise<boolean> {
  const rows =
    tx.dialect === 'sqlite'
      ? await tx.query("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
      : await tx.query('SELECT 1 AS found WHERE to_regclass(?) IS NOT NULL', [table]);
  return rows.length > 0;
}

async function currentVersion(tx: SqlExecutor): Promise<number> {
  const [row] = await tx.query('SELECT MAX(version) AS version FROM tresor_schema');
  if (row === undefined || row.version === null) return 0;
  const version = integerValue(row.version);
  if (version === undefined || version < 1) {
    throw new TresorError(
      'STORAGE_SCHEMA_UNSUPPORTED',
      'the schema table holds a version that is not a number',
    );
  }
  return version;
}

function tooNew(version: number): TresorError {
  return new TresorError(
    'STORAGE_SCHEMA_UNSUPPORTED',
    `the database schema is version ${version}, newer than this build's ${SCHEMA_VERSION}`,
  );
}

/**
 * Brings the schema up to {@link SCHEMA_VERSION}: applies the missing versions in order, each
 * recorded in `tresor_schema`, all in one transaction under the `schema` lock, so replicas that
 * start together apply each version once and a failure leaves the previous version intact.
 * Idempotent: a current database is left untouched.
 *
 * @throws TresorError STORAGE_SCHEMA_UNSUPPORTED when the database is newer than this build.
 */
export function migrate(client: SqlClient, now: () => Date = () => new Date()): Promise<MigrationResult> {
  return client.transaction({ mode: 'write', lock: 'schema' }, async (tx) => {
    await tx.execute(SCHEMA_TABLE);
    const from = await currentVersion(tx);
    if (from > SCHEMA_VERSION) throw tooNew(from);
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (migration.version <= from) continue;
      for (const statement of tx.dialect === 'sqlite' ? migration.sqlite : migration.postgres) {
        await tx.execute(statement);
      }
      await tx.execute('INSERT INTO tresor_schema (version, name, applied_at) VALUES (?, ?, ?)', [
        migration.version,
        migration.name,
        now().toISOString(),
      ]);
      applied.push(migration.version);
    }
    return { from, to: SCHEMA_VERSION, applied };
  });
}

/**
 * Checks, without writing, that the database holds exactly this build's schema: what a
 * read-only reader (`tresor audit verify`) runs instead of {@link migrate}.
 *
 * @throws TresorError STORAGE_SCHEMA_UNSUPPORTED when it is not a Tresor database, or is older
 *   or newer than this build.
 */
export function checkSchema(client: SqlClient): Promise<number> {
  return client.transaction({ mode: 'read' }, async (tx) => {
    if (!(await tableExists(tx, 'tresor_schema'))) {
      throw new TresorError('STORAGE_SCHEMA_UNSUPPORTED', 'the database has no Tresor schema table');
    }
    const version = await currentVersion(tx);
    if (version > SCHEMA_VERSION) throw tooNew(version);
    if (version < SCHEMA_VERSION) {
      throw new TresorError(
        'STORAGE_SCHEMA_UNSUPPORTED',
        `the database schema is version ${version}; start Tresor once so it migrates to ${SCHEMA_VERSION}`,
      );
    }
    return version;
  });
}
