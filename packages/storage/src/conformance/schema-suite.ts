import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkSchema, migrate } from '../schema/migrate.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../schema/migrations.js';
import type { SqlClient } from '../sql/sql-client.js';
import { openMetadataDatabase } from '../state-dir.js';
import { openPostgres } from '../sql/postgres-client.js';
import { openSqlite } from '../sql/sqlite-client.js';
import type { StorageFixture, TestDatabase } from './storage-fixture.js';

/** A connection without migrating: what the migration tests start from. */
export async function openRaw(db: TestDatabase): Promise<SqlClient> {
  const t = db.target;
  return t.kind === 'sqlite'
    ? openSqlite({ file: t.file })
    : openPostgres({ url: t.url, ...(t.schema === undefined ? {} : { schema: t.schema }) });
}

async function rejectCode(promise: Promise<unknown>): Promise<string> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return (err as { code?: string } | undefined)?.code ?? 'resolved';
}

export function schemaSuite(fixture: StorageFixture): void {
  describe('schema migrations and transactions', () => {
    let db: TestDatabase;
    const clients: SqlClient[] = [];
    const raw = async (): Promise<SqlClient> => {
      const c = await openRaw(db);
      clients.push(c);
      return c;
    };
    beforeEach(async () => {
      db = await fixture.create();
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) await c.close();
      await db.dispose();
    });

    it('migrates an empty database to the current version and records it', async () => {
      const client = await raw();
      expect(await migrate(client, () => new Date('2025-02-03T04:05:06.000Z'))).toEqual({
        from: 0,
        to: SCHEMA_VERSION,
        applied: MIGRATIONS.map((m) => m.version),
      });
      const rows = await client.query('SELECT version, name, applied_at FROM tresor_schema ORDER BY version');
      expect(rows).toHaveLength(MIGRATIONS.length);
      expect(Number(rows[0]?.version)).toBe(1);
      expect(rows[0]?.applied_at).toBe('2025-02-03T04:05:06.000Z');
      expect(await checkSchema(client)).toBe(SCHEMA_VERSION);
    });

    it('is idempotent: a second run applies nothing and keeps the data', async () => {
      const client = await raw();
      await migrate(client);
      await client.execute(
        "INSERT INTO audit_checkpoints VALUES ('periodic', 1, 'x', 't', 'k', 'ES256', 's')",
      );
      expect(await migrate(client)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] });
      expect(await client.query('SELECT kind FROM audit_checkpoints')).toHaveLength(1);
    });

    it('applies each version once when several connections migrate at the same time', async () => {
      const connections = await Promise.all([raw(), raw(), raw()]);
      const results = await Promise.all(connections.map((c) => migrate(c)));
      expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
      expect(await connections[0].query('SELECT version FROM tresor_schema')).toHaveLength(MIGRATIONS.length);
    });

    it('refuses a database whose schema is newer than this build, read-only or not', async () => {
      const client = await raw();
      await migrate(client);
      await client.execute(
        "INSERT INTO tresor_schema VALUES (?, 'from the future', '2030-01-01T00:00:00.000Z')",
        [SCHEMA_VERSION + 1],
      );
      expect(await rejectCode(migrate(client))).toBe('STORAGE_SCHEMA_UNSUPPORTED');
      expect(await rejectCode(checkSchema(client))).toBe('STORAGE_SCHEMA_UNSUPPORTED');
      expect(await rejectCode(openMetadataDatabase(db.target, { readOnly: true }))).toBe(
        'STORAGE_SCHEMA_UNSUPPORTED',
      );
    });

    it('refuses to read a database that is not a Tresor database, without creating anything', async () => {
      const client = await raw();
      await client.execute('CREATE TABLE unrelated (x INTEGER)');
      expect(await rejectCode(checkSchema(client))).toBe('STORAGE_SCHEMA_UNSUPPORTED');
      expect(await rejectCode(openMetadataDatabase(db.target, { readOnly: true }))).toBe(
        'STORAGE_SCHEMA_UNSUPPORTED',
      );
      expect(await rejectCode(client.query('SELECT * FROM tresor_schema'))).toBe(
        'STORAGE_SCHEMA_UNSUPPORTED',
      );
    });

    it('rolls a failed transaction back completely', async () => {
      const client = await raw();
      await migrate(client);
      const failure = client.transaction({ mode: 'write', lock: 'audit' }, async (tx) => {
        await tx.execute("INSERT INTO audit_checkpoints VALUES ('periodic', 1, 'x', 't', 'k', 'ES256', 's')");
        throw new Error('changed my mind');
      });
      await expect(failure).rejects.toThrow('changed my mind');
      expect(await client.query('SELECT kind FROM audit_checkpoints')).toEqual([]);
    });

    it('reports a duplicate key as STORAGE_CONFLICT and a closed client as STORAGE_UNAVAILABLE', async () => {
      const client = await raw();
      await migrate(client);
      const insert = "INSERT INTO audit_checkpoints VALUES ('periodic', 1, 'x', 't', 'k', 'ES256', 's')";
      await client.execute(insert);
      expect(await rejectCode(client.execute(insert))).toBe('STORAGE_CONFLICT');
      const other = await openRaw(db);
      await other.close();
      expect(await rejectCode(other.query('SELECT 1'))).toBe('STORAGE_UNAVAILABLE');
    });

    it('refuses an update of an audit record (append-only trigger)', async () => {
      const client = await raw();
      await migrate(client);
      await client.execute(
        "INSERT INTO audit_records VALUES (1, 't', 'admin', 'a', 'x.y', '', 'success', '{}', 'p', 'h')",
      );
      expect(
        await rejectCode(client.execute("UPDATE audit_records SET target = 'other' WHERE seq = 1")),
      ).toBe('STORAGE_RECORD_INVALID');
    });
  });
}
