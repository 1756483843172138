import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { migrate } from '../schema/migrate.js';
import type { SqlClient, SqlExecutor } from './sql-client.js';
import { openSqlite } from './sqlite-client.js';
import { openSqliteInWorker } from './sqlite-worker-client.js';

async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
    return 'none';
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
}

const CHECKPOINT = "INSERT INTO audit_checkpoints VALUES ('periodic', ?, 'h', 't', 'k', 'ES256', 's')";

describe('SQLite driver on a worker thread', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tresor-sqlite-worker-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the database file readable by its owner only, in WAL mode with synchronous=FULL', async () => {
    const file = join(dir, 'tresor.db');
    const client = await openSqliteInWorker({ file });
    await migrate(client);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await client.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    // 2 = FULL: a commit is answered only after the WAL is on disk.
    expect(await client.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
    await client.close();
  });

  it('refuses a missing file read-only, a file that is not SQLite, and a path in a missing directory', async () => {
    expect(await codeOf(openSqliteInWorker({ file: join(dir, 'missing.db'), readOnly: true }))).toBe(
      'STORAGE_UNAVAILABLE',
    );
    writeFileSync(join(dir, 'garbage.db'), 'this is not an SQLite database, not even close to one');
    expect(await codeOf(openSqliteInWorker({ file: join(dir, 'garbage.db') }))).toBe('STORAGE_UNAVAILABLE');
    expect(await codeOf(() => openSqliteInWorker({ file: join(dir, 'no', 'such', 'dir.db') }))).toBe(
      'STORAGE_UNAVAILABLE',
    );
  });

  it('maps SQLite failures to the same codes as the inline driver', async () => {
    const client = await openSqliteInWorker({ file: join(dir, 'tresor.db') });
    await migrate(client);
    await client.execute(CHECKPOINT, [1]);
    expect(await codeOf(client.execute(CHECKPOINT, [1]))).toBe('STORAGE_CONFLICT');
    expect(await codeOf(client.query('SELECT * FROM no_such_table'))).toBe('STORAGE_SCHEMA_UNSUPPORTED');
    expect(await codeOf(client.query('SELEKT 1'))).toBe('INTERNAL_ERROR');
    await client.execute(
      "INSERT INTO audit_records VALUES (1, 't', 'system', 'x', 'a', 'g', 'success', '{}', 'p', 'h')",
    );
    expect(await codeOf(client.execute("UPDATE audit_records SET actor_id = 'y'"))).toBe(
      'STORAGE_RECORD_INVALID',
    );
    await client.close();
    expect(await codeOf(client.query('SELECT 1'))).toBe('STORAGE_UNAVAILABLE');
    await client.close();
  });

  it('reports STORAGE_BUSY when another connection holds the write lock past the busy timeout', async () => {
    const file = join(dir, 'tresor.db');
    const client = await openSqliteInWorker({ file, busyTimeoutMs: 50 });
    await migrate(client);
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    expect(await codeOf(client.transaction({ mode: 'write' }, () => Promise.resolve()))).toBe('STORAGE_BUSY');
    other.exec('ROLLBACK');
    other.close();
    await client.transaction({ mode: 'write' }, () => Promise.resolve());
    await client.close();
  });

  it('keeps the event loop running while it waits for another writer, then commits', async () => {
    const file = join(dir, 'tresor.db');
    const client = await openSqliteInWorker({ file, busyTimeoutMs: 30_000 });
    await migrate(client);
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    let committed = false;
    const write = client
      .transaction({ mode: 'write' }, (tx) => tx.execute(CHECKPOINT, [7]))
      .then(() => (committed = true));
    // With the inline driver this timer could not fire: the busy handler would block this thread.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(committed).toBe(false);
    other.exec('ROLLBACK');
    other.close();
    await write;
    expect(await client.query('SELECT record_count FROM audit_checkpoints')).toEqual([{ record_count: 7 }]);
    await client.close();
  });

  it('rolls back everything a failed transaction wrote, and commits what a good one wrote', async () => {
    const client = await openSqliteInWorker({ file: join(dir, 'tresor.db') });
    await migrate(client);
    const failure = client.transaction({ mode: 'write' }, async (tx) => {
      await tx.execute(CHECKPOINT, [1]);
      await tx.execute(CHECKPOINT, [2]);
      throw new Error('the work failed');
    });
    await expect(failure).rejects.toThrow('the work failed');
    expect(await client.query('SELECT COUNT(*) AS n FROM audit_checkpoints')).toEqual([{ n: 0 }]);
    // A failing statement inside the transaction rolls back the statements before it.
    expect(
      await codeOf(
        client.transaction({ mode: 'write' }, async (tx) => {
          await tx.execute(CHECKPOINT, [3]);
          await tx.execute(CHECKPOINT, [3]);
        }),
      ),
    ).toBe('STORAGE_CONFLICT');
    expect(await client.query('SELECT COUNT(*) AS n FROM audit_checkpoints')).toEqual([{ n: 0 }]);
    await client.transaction({ mode: 'write' }, async (tx) => {
      await tx.execute(CHECKPOINT, [4]);
      await tx.execute(CHECKPOINT, [5]);
    });
    expect(await client.query('SELECT record_count FROM audit_checkpoints ORDER BY 1')).toEqual([
      { record_count: 4 },
      { record_count: 5 },
    ]);
    await client.close();
  });

  it('sends a transaction of known statements as one message, relaxed or not, committed or rolled back', async () => {
    const client = await openSqliteInWorker({ file: join(dir, 'tresor.db') });
    await migrate(client);
    const posted = vi.spyOn(Worker.prototype, 'postMessage');
    try {
      const statements = [1, 2, 3].map((n) => ({ sql: CHECKPOINT, params: [n] }));
      expect(await client.executeBatch(statements, { durability: 'process-crash' })).toEqual([1, 1, 1]);
      expect(posted).toHaveBeenCalledTimes(1);
      expect(await codeOf(client.executeBatch([{ sql: CHECKPOINT, params: [4] }, statements[0]!]))).toBe(
        'STORAGE_CONFLICT',
      );
      expect(posted).toHaveBeenCalledTimes(2);
    } finally {
      posted.mockRestore();
    }
    expect(await client.query('SELECT COUNT(*) AS n FROM audit_checkpoints')).toEqual([{ n: 3 }]);
    expect(await client.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
    await client.close();
  });

  it('round-trips blobs, big integers and text, and refuses a read-only write and a leaked executor', async () => {
    const file = join(dir, 'tresor.db');
    const writer = await openSqliteInWorker({ file });
    await migrate(writer);
    const blob = new Uint8Array([0, 1, 2, 255]).subarray(1);
    const [row] = await writer.query('SELECT ? AS b, ? AS i, ? AS t, ? AS n', [blob, 2n ** 40n, 'x', null]);
    expect(row).toEqual({ b: new Uint8Array([1, 2, 255]), i: 2 ** 40, t: 'x', n: null });
    const reader = await openSqliteInWorker({ file, readOnly: true });
    expect(await codeOf(reader.execute('DELETE FROM audit_records'))).toBe('STORAGE_UNAVAILABLE');
    let leaked: SqlExecutor | undefined;
    await writer.transaction({ mode: 'read' }, (tx) => {
      leaked = tx;
      return Promise.resolve();
    });
    expect(await codeOf(() => leaked!.query('SELECT 1'))).toBe('INTERNAL_ERROR');
    await reader.close();
    await writer.close();
  });

  it('serialises transactions of an inline and a worker connection to one file instead of deadlocking', async () => {
    const file = join(dir, 'tresor.db');
    const a = await openSqliteInWorker({ file, busyTimeoutMs: 200 });
    const b = openSqlite({ file, busyTimeoutMs: 200 });
    await migrate(a);
    const insert = (client: SqlClient, n: number) =>
      client.transaction({ mode: 'write' }, async (tx) => {
        await tx.execute(CHECKPOINT, [n]);
        await new Promise((r) => setTimeout(r, 2));
        return tx.query('SELECT COUNT(*) AS n FROM audit_checkpoints');
      });
    await Promise.all(Array.from({ length: 10 }, (_, n) => insert(n % 2 === 0 ? a : b, n + 1)));
    expect(await a.query('SELECT COUNT(*) AS n FROM audit_checkpoints')).toEqual([{ n: 10 }]);
    await a.close();
    await b.close();
  });
});
