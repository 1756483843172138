import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlClient, SqlExecutor, TransactionOptions } from '../sql/sql-client.js';
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
  });
}
