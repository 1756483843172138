import { statSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../schema/migrate.js';
import { postgresPlaceholders } from './postgres-placeholders.js';
import { openPostgres } from './postgres-client.js';
import { integerValue } from './row-values.js';
import { TresorError } from '@tresor/protocol';
import { SerialQueue } from './serial-queue.js';
import type { SqlExecutor, SqlRow, SqlValue } from './sql-client.js';
import { openSqlite } from './sqlite-client.js';
import { sqliteStorageError } from './sqlite-errors.js';
import {
  QueuedSqliteClient,
  runSqliteBatch,
  type SqliteBatch,
  type SqliteBatchOutcome,
  type SqliteConnection,
} from './sqlite-connection.js';

async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
    return 'none';
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
}

describe('PostgreSQL placeholders', () => {
  it('numbers ? in order, leaving quoted text alone', () => {
    expect(postgresPlaceholders('SELECT ? , ?')).toBe('SELECT $1 , $2');
    expect(postgresPlaceholders('SELECT \'?\', "a?b", ? WHERE x = ?')).toBe(
      'SELECT \'?\', "a?b", $1 WHERE x = $2',
    );
    expect(postgresPlaceholders('SELECT 1')).toBe('SELECT 1');
  });
});

describe('integer column values', () => {
  it('accepts safe integers as number, bigint or decimal text, and nothing else', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(integerValue(n)).toBe(n);
        expect(integerValue(BigInt(n))).toBe(n);
        expect(integerValue(String(n))).toBe(n);
      }),
      { numRuns: 1000 },
    );
    for (const bad of [
      1.5,
      Number.NaN,
      2 ** 53,
      '9007199254740993',
      '01',
      '1e3',
      ' 1',
      '',
      null,
      undefined,
      {},
      2n ** 60n,
    ]) {
      expect(integerValue(bad)).toBeUndefined();
    }
  });
});

describe('SQLite driver', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tresor-sqlite-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the database file readable by its owner only, in WAL mode', async () => {
    const file = join(dir, 'tresor.db');
    const client = openSqlite({ file });
    await migrate(client);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const [mode] = await client.query('PRAGMA journal_mode');
    expect(mode?.journal_mode).toBe('wal');
    await client.close();
  });

  it('refuses to open a missing file read-only, a file that is not SQLite, or a path in a missing directory', async () => {
    expect(await codeOf(() => openSqlite({ file: join(dir, 'missing.db'), readOnly: true }))).toBe(
      'STORAGE_UNAVAILABLE',
    );
    writeFileSync(join(dir, 'garbage.db'), 'this is not an SQLite database, not even close to one');
    expect(await codeOf(() => openSqlite({ file: join(dir, 'garbage.db') }))).toBe('STORAGE_UNAVAILABLE');
    expect(await codeOf(() => openSqlite({ file: join(dir, 'no', 'such', 'dir.db') }))).toBe(
      'STORAGE_UNAVAILABLE',
    );
  });

  it('reports STORAGE_BUSY when another connection holds the write lock past the busy timeout', async () => {
    const file = join(dir, 'tresor.db');
    const client = openSqlite({ file, busyTimeoutMs: 50 });
    await migrate(client);
    // A connection outside this driver's queue, as another process would be.
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    expect(await codeOf(client.transaction({ mode: 'write' }, () => Promise.resolve()))).toBe('STORAGE_BUSY');
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
    other.exec('ROLLBACK');
    other.close();
    await client.transaction({ mode: 'write' }, () => Promise.resolve());
    await client.close();
  });

  it('refuses writes on a read-only connection and use of a transaction executor after it ended', async () => {
    const file = join(dir, 'tresor.db');
    const writer = openSqlite({ file });
    await migrate(writer);
    const reader = openSqlite({ file, readOnly: true });
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

  it('serialises transactions of two connections to one file in this process instead of deadlocking', async () => {
    const file = join(dir, 'tresor.db');
    const a = openSqlite({ file, busyTimeoutMs: 100 });
    const b = openSqlite({ file, busyTimeoutMs: 100 });
    await migrate(a);
    const insert = (client: typeof a, n: number) =>
      client.transaction({ mode: 'write' }, async (tx) => {
        await tx.execute(
          "INSERT INTO audit_checkpoints VALUES ('periodic', ?, 'h', 't', 'k', 'ES256', 's')",
          [n],
        );
        await new Promise((r) => setTimeout(r, 5));
        return tx.query('SELECT COUNT(*) AS n FROM audit_checkpoints');
      });
    await Promise.all(Array.from({ length: 10 }, (_, n) => insert(n % 2 === 0 ? a : b, n + 1)));
    expect(await a.query('SELECT COUNT(*) AS n FROM audit_checkpoints')).toEqual([{ n: 10 }]);
    await a.close();
    await b.close();
  });
});

/**
 * A better-sqlite3 connection whose `PRAGMA synchronous` changes fail while `failing` is set (a
 * disk or worker failure at the worst moment); it logs every BEGIN, COMMIT and PRAGMA it runs.
 */
class PragmaFaultConnection implements SqliteConnection {
  failing = false;
  readonly log: string[] = [];
  constructor(readonly db: Database.Database) {}
  query(sql: string, params: readonly SqlValue[]): Promise<SqlRow[]> {
    return Promise.resolve(this.db.prepare(sql).all(...params) as SqlRow[]);
  }
  execute(sql: string, params: readonly SqlValue[]): Promise<number> {
    return Promise.resolve(this.db.prepare(sql).run(...params).changes);
  }
  exec(sql: string): Promise<void> {
    return Promise.resolve().then(() => {
      this.#exec(sql);
    });
  }
  rollback(): Promise<void> {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    return Promise.resolve();
  }
  batch(batch: SqliteBatch): Promise<SqliteBatchOutcome> {
    const outcome = runSqliteBatch(
      {
        exec: (sql) => {
          this.#exec(sql);
        },
        run: (sql, params) => this.db.prepare(sql).run(...params).changes,
        rollback: () => {
          this.log.push('ROLLBACK');
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
        },
      },
      batch,
    );
    return Promise.resolve(
      outcome.committed ? outcome : { ...outcome, error: sqliteStorageError(outcome.error) },
    );
  }
  /** Sets `failing` once `sql` has run; the returned function checks that it did. */
  failAfter(sql: string): () => void {
    this.#failAfter = sql;
    return () => {
      expect(this.#failAfter).toBeUndefined();
    };
  }
  #failAfter: string | undefined;
  #exec(sql: string): void {
    if (this.failing && sql.startsWith('PRAGMA synchronous')) {
      throw new TresorError('STORAGE_UNAVAILABLE', 'disk I/O error');
    }
    this.log.push(sql);
    this.db.exec(sql);
    if (sql === this.#failAfter) {
      this.failing = true;
      this.#failAfter = undefined;
    }
  }
  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}

describe('SQLite durability levels, when switching fails', () => {
  const CHECKPOINT = "INSERT INTO audit_checkpoints VALUES ('periodic', ?, 'h', 't', 'k', 'ES256', 's')";
  const RELAXED = { mode: 'write', durability: 'process-crash' } as const;
  let connection: PragmaFaultConnection;
  let client: QueuedSqliteClient;
  beforeEach(async () => {
    const db = new Database(':memory:');
    db.pragma('synchronous = FULL');
    connection = new PragmaFaultConnection(db);
    client = new QueuedSqliteClient(connection, new SerialQueue());
    await migrate(client);
    connection.log.splice(0);
  });
  afterEach(async () => {
    connection.failing = false;
    await client.close();
  });

  it('switches to NORMAL before BEGIN and back to FULL after COMMIT or ROLLBACK, and not at all by default', async () => {
    const level = (): unknown => connection.db.pragma('synchronous', { simple: true });
    await client.transaction(RELAXED, (tx) => tx.execute(CHECKPOINT, [1]));
    // Back at FULL as the transaction ends, not only once the next statement comes.
    expect(level()).toBe(2);
    await expect(
      client.transaction(RELAXED, async (tx) => {
        await tx.execute(CHECKPOINT, [2]);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(level()).toBe(2);
    await client.transaction({ mode: 'write' }, (tx) => tx.execute(CHECKPOINT, [3]));
    expect(connection.log).toEqual([
      'PRAGMA synchronous = NORMAL',
      'BEGIN IMMEDIATE',
      'COMMIT',
      'PRAGMA synchronous = FULL',
      'PRAGMA synchronous = NORMAL',
      'BEGIN IMMEDIATE',
      'PRAGMA synchronous = FULL',
      'BEGIN IMMEDIATE',
      'COMMIT',
    ]);
  });

  it('reports a commit whose restore failed as committed, then restores before the next statement', async () => {
    const committed = client.transaction(RELAXED, async (tx) => {
      await tx.execute(CHECKPOINT, [1]);
      connection.failing = true;
      return 'stored';
    });
    expect(await committed).toBe('stored');
    expect(connection.db.pragma('synchronous', { simple: true })).toBe(1);
    // Still failing: nothing runs relaxed, every statement and transaction is refused.
    expect(await codeOf(client.execute(CHECKPOINT, [2]))).toBe('STORAGE_UNAVAILABLE');
    expect(await codeOf(client.query('SELECT 1'))).toBe('STORAGE_UNAVAILABLE');
    expect(await codeOf(client.transaction({ mode: 'write' }, (tx) => tx.execute(CHECKPOINT, [3])))).toBe(
      'STORAGE_UNAVAILABLE',
    );
    expect(connection.db.prepare('SELECT record_count FROM audit_checkpoints').all()).toEqual([
      { record_count: 1 },
    ]);
    connection.failing = false;
    expect(await client.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
    expect(connection.log.filter((sql) => sql.startsWith('PRAGMA'))).toEqual([
      'PRAGMA synchronous = NORMAL',
      'PRAGMA synchronous = FULL',
    ]);
  });

  it('runs a relaxed batch as NORMAL, BEGIN, statements, COMMIT or ROLLBACK, FULL; a default one without switching', async () => {
    const level = (): unknown => connection.db.pragma('synchronous', { simple: true });
    expect(await client.executeBatch([{ sql: CHECKPOINT, params: [1] }], RELAXED)).toEqual([1]);
    expect(level()).toBe(2);
    const duplicate = client.executeBatch(
      [
        { sql: CHECKPOINT, params: [2] },
        { sql: CHECKPOINT, params: [1] },
      ],
      RELAXED,
    );
    expect(await codeOf(duplicate)).toBe('STORAGE_CONFLICT');
    expect(level()).toBe(2);
    expect(await client.executeBatch([{ sql: CHECKPOINT, params: [3] }])).toEqual([1]);
    expect(connection.log).toEqual([
      'PRAGMA synchronous = NORMAL',
      'BEGIN IMMEDIATE',
      'COMMIT',
      'PRAGMA synchronous = FULL',
      'PRAGMA synchronous = NORMAL',
      'BEGIN IMMEDIATE',
      'ROLLBACK',
      'PRAGMA synchronous = FULL',
      'BEGIN IMMEDIATE',
      'COMMIT',
    ]);
    expect(connection.db.prepare('SELECT record_count FROM audit_checkpoints').all()).toEqual([
      { record_count: 1 },
      { record_count: 3 },
    ]);
  });

  it('reports a batch whose restore failed as committed, then refuses everything until FULL is back', async () => {
    const failAfterCommit = connection.failAfter('COMMIT');
    expect(await client.executeBatch([{ sql: CHECKPOINT, params: [1] }], RELAXED)).toEqual([1]);
    failAfterCommit();
    expect(connection.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(await codeOf(client.executeBatch([{ sql: CHECKPOINT, params: [2] }]))).toBe('STORAGE_UNAVAILABLE');
    expect(await codeOf(client.query('SELECT 1'))).toBe('STORAGE_UNAVAILABLE');
    connection.failing = false;
    expect(await client.executeBatch([{ sql: CHECKPOINT, params: [3] }])).toEqual([1]);
    expect(connection.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(connection.db.prepare('SELECT record_count FROM audit_checkpoints').all()).toEqual([
      { record_count: 1 },
      { record_count: 3 },
    ]);
  });

  it('refuses a relaxed batch that cannot relax, running none of its statements', async () => {
    connection.failing = true;
    expect(await codeOf(client.executeBatch([{ sql: CHECKPOINT, params: [1] }], RELAXED))).toBe(
      'STORAGE_UNAVAILABLE',
    );
    expect(connection.log).toEqual([]);
    connection.failing = false;
    expect(await client.query('SELECT COUNT(*) AS n FROM audit_checkpoints')).toEqual([{ n: 0 }]);
  });

  it('refuses a relaxed transaction that cannot relax, running none of its work', async () => {
    connection.failing = true;
    let ran = false;
    const refused = client.transaction(RELAXED, () => {
      ran = true;
      return Promise.resolve();
    });
    expect(await codeOf(refused)).toBe('STORAGE_UNAVAILABLE');
    expect(ran).toBe(false);
    connection.failing = false;
    expect(await client.transaction({ mode: 'write' }, (tx) => tx.query('PRAGMA synchronous'))).toEqual([
      { synchronous: 2 },
    ]);
  });
});

describe('PostgreSQL driver, without a server', () => {
  it('refuses a URL of another scheme and a schema name that is not an identifier', async () => {
    expect(await codeOf(openPostgres({ url: 'mysql://localhost/x' }))).toBe('USAGE_INVALID');
    expect(await codeOf(openPostgres({ url: 'postgres://localhost/x', schema: 'a; DROP TABLE x' }))).toBe(
      'USAGE_INVALID',
    );
  });

  it('reports an unreachable server as STORAGE_UNAVAILABLE without echoing the URL', async () => {
    const err: unknown = await openPostgres({
      url: 'postgresql://u:secret-pw@127.0.0.1:1/db',
      connectTimeoutMs: 2000,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect((err as Error).message).not.toContain('secret-pw');
  });
});
