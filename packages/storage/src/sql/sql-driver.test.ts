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
import type { SqlExecutor } from './sql-client.js';
import { openSqlite } from './sqlite-client.js';

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
