import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlClient, SqlExecutor, SqlStatement, TransactionOptions } from '../sql/sql-client.js';
import { openMetadataDatabase } from '../state-dir.js';
import type { StorageFixture, TestDatabase } from './storage-fixture.js';

const CHECKPOINT = "INSERT INTO audit_checkpoints VALUES ('periodic', ?, 'h', 't', 'k', 'ES256', 's')";

/**
 * How the statements on `on` commit now, `full` or `relaxed` (anything else as read): SQLite
 * `PRAGMA synchronous` (2 = FULL, 1 = NORMAL), PostgreSQL `SHOW synchronous_commit` (on, off).
 */
async function commitLevel(on: SqlExecutor): Promise<string> {
  if (on.dialect === 'sqlite') {
    const [row] = await on.query('PRAGMA synchronous');
    return row?.synchronous === 2 ? 'full' : row?.synchronous === 1 ? 'relaxed' : String(row?.synchronous);
  }
  const [row] = await on.query('SHOW synchronous_commit');
  return row?.synchronous_commit === 'on'
    ? 'full'
    : row?.synchronous_commit === 'off'
      ? 'relaxed'
      : String(row?.synchronous_commit);
}

const RELAXED: TransactionOptions = { mode: 'write', durability: 'process-crash' };

export function durabilitySuite(fixture: StorageFixture): void {
  describe('transaction durability', () => {
    let db: TestDatabase;
    const clients: SqlClient[] = [];
    const open = async (): Promise<SqlClient> => {
      const client = await openMetadataDatabase(db.target);
      clients.push(client);
      return client;
    };
    const count = async (client: SqlClient): Promise<number> =>
      Number((await client.query('SELECT COUNT(*) AS n FROM audit_checkpoints'))[0]?.n);
    beforeEach(async () => {
      db = await fixture.create();
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) await c.close();
      await db.dispose();
    });

    it('runs a process-crash transaction relaxed, commits it for every connection, then is back at full', async () => {
      const client = await open();
      expect(await commitLevel(client)).toBe('full');
      const inside = await client.transaction(RELAXED, async (tx) => {
        await tx.execute(CHECKPOINT, [1]);
        return commitLevel(tx);
      });
      expect(inside).toBe('relaxed');
      expect(await commitLevel(client)).toBe('full');
      expect(await count(await open())).toBe(1);
      // Read transactions may ask for it too; they end the same way.
      expect(await client.transaction({ mode: 'read', durability: 'process-crash' }, commitLevel)).toBe(
        'relaxed',
      );
      expect(await commitLevel(client)).toBe('full');
    });

    it('runs default and power-loss transactions at full, before and after relaxed ones', async () => {
      const client = await open();
      expect(await client.transaction({ mode: 'write' }, commitLevel)).toBe('full');
      await client.transaction(RELAXED, (tx) => tx.execute(CHECKPOINT, [1]));
      expect(await client.transaction({ mode: 'write' }, commitLevel)).toBe('full');
      expect(await client.transaction({ mode: 'write', durability: 'power-loss' }, commitLevel)).toBe('full');
      expect(await client.transaction({ mode: 'read' }, commitLevel)).toBe('full');
      expect(await count(client)).toBe(1);
    });

    it.each([
      [
        'whose work threw',
        { message: 'changed my mind' },
        (): never => {
          throw new Error('changed my mind');
        },
      ],
      [
        'whose statement failed',
        { code: 'STORAGE_CONFLICT' },
        (tx: SqlExecutor) => tx.execute(CHECKPOINT, [1]),
      ],
    ] as const)(
      'is back at full after a relaxed transaction %s, and wrote nothing',
      async (_what, error, fail) => {
        const client = await open();
        const failure = client.transaction(RELAXED, async (tx) => {
          await tx.execute(CHECKPOINT, [1]);
          await fail(tx);
        });
        await expect(failure).rejects.toMatchObject(error);
        expect(await commitLevel(client)).toBe('full');
        expect(await client.transaction({ mode: 'write' }, commitLevel)).toBe('full');
        expect(await count(client)).toBe(0);
      },
    );

    it('never lets a relaxed transaction relax its neighbours queued at the same time', async () => {
      const client = await open();
      const levels = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          client.transaction(i % 2 === 0 ? RELAXED : { mode: 'write' }, async (tx) => {
            await tx.execute(CHECKPOINT, [i + 1]);
            return commitLevel(tx);
          }),
        ),
      );
      expect(levels).toEqual(['relaxed', 'full', 'relaxed', 'full', 'relaxed', 'full', 'relaxed', 'full']);
      expect(await commitLevel(client)).toBe('full');
      expect(await count(client)).toBe(8);
    });

    describe('a transaction of known statements (executeBatch)', () => {
      const checkpoint = (n: number): SqlStatement => ({ sql: CHECKPOINT, params: [n] });

      it('commits every statement, in order, for every connection, with their changed-row counts', async () => {
        const client = await open();
        const changes = await client.executeBatch(
          [
            checkpoint(1),
            checkpoint(2),
            { sql: 'DELETE FROM audit_checkpoints WHERE record_count < ?', params: [2] },
          ],
          { durability: 'process-crash' },
        );
        expect(changes).toEqual([1, 1, 1]);
        expect(await commitLevel(client)).toBe('full');
        const other = await open();
        // PostgreSQL answers a BIGINT as a string, SQLite as a number.
        const rows = await other.query('SELECT record_count FROM audit_checkpoints');
        expect(rows.map((row) => Number(row.record_count))).toEqual([2]);
      });

      it.each([[{}], [{ durability: 'power-loss' }], [{ durability: 'process-crash' }]] as const)(
        'writes nothing when a statement fails (%o): the first failure, mapped, and back at full',
        async (options) => {
          const client = await open();
          await client.execute(CHECKPOINT, [2]);
          const failure = client.executeBatch([checkpoint(1), checkpoint(2), checkpoint(3)], options);
          await expect(failure).rejects.toMatchObject({ code: 'STORAGE_CONFLICT' });
          expect(await commitLevel(client)).toBe('full');
          expect(await count(client)).toBe(1);
          // The connection is usable: no transaction was left open.
          expect(await client.executeBatch([checkpoint(3)], options)).toEqual([1]);
          expect(await count(client)).toBe(2);
        },
      );

      it('takes its turn with transactions and statements queued at the same time, none of them relaxed', async () => {
        const client = await open();
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            i % 2 === 0
              ? client.executeBatch([checkpoint(i + 1)], { durability: 'process-crash' })
              : client.transaction({ mode: 'write' }, async (tx) => {
                  await tx.execute(CHECKPOINT, [i + 1]);
                  return commitLevel(tx);
                }),
          ),
        );
        expect(results).toEqual([[1], 'full', [1], 'full', [1], 'full']);
        expect(await commitLevel(client)).toBe('full');
        expect(await count(client)).toBe(6);
      });

      it('refuses to run on a closed client', async () => {
        const client = await open();
        await client.close();
        await expect(client.executeBatch([checkpoint(1)])).rejects.toMatchObject({
          code: 'STORAGE_UNAVAILABLE',
        });
      });
    });
  });
}
