import { closeSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { TresorError } from '@tresor/protocol';
import { SerialQueue } from './serial-queue.js';
import type { SqlClient, SqlRow, SqlValue } from './sql-client.js';
import { sqliteStorageError } from './sqlite-errors.js';
import {
  QueuedSqliteClient,
  runSqliteBatch,
  type SqliteBatch,
  type SqliteBatchOutcome,
  type SqliteConnection,
} from './sqlite-connection.js';

export interface SqliteOptions {
  /** The database file, or `:memory:` for a private in-memory database (tests). */
  readonly file: string;
  /** Opens an existing file without write access (verification); never creates or migrates. */
  readonly readOnly?: boolean;
  /** How long a writer waits for another process's write lock before STORAGE_BUSY. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
}

/** The file name of a private in-memory database. */
export const SQLITE_MEMORY = ':memory:';
const MEMORY = SQLITE_MEMORY;

/**
 * One queue per database file in this process. better-sqlite3 is synchronous: if a second
 * connection in the same process waited for the file's write lock, its busy handler would block
 * the only thread while the lock holder sits at an await, until the timeout. Queuing here keeps
 * the lock waits between processes, where they belong.
 */
const fileQueues = new Map<string, SerialQueue>();

export function queueFor(file: string): SerialQueue {
  if (file === MEMORY) return new SerialQueue();
  const key = resolve(file);
  let queue = fileQueues.get(key);
  if (queue === undefined) {
    queue = new SerialQueue();
    fileQueues.set(key, queue);
  }
  return queue;
}

/** Creates a missing database file readable by its owner only: it holds tenants' metadata. */
export function createPrivateFile(file: string): void {
  try {
    closeSync(openSync(file, 'a', 0o600));
  } catch (cause) {
    throw new TresorError('STORAGE_UNAVAILABLE', `cannot create the database file ${file}`, { cause });
  }
}

/** Runs a statement a microtask from now, its errors mapped to catalogue codes. */
const later = <T>(run: () => T): Promise<T> =>
  Promise.resolve().then(() => {
    try {
      return run();
    } catch (err) {
      throw sqliteStorageError(err);
    }
  });

function toParam(value: SqlValue): unknown {
  // better-sqlite3 binds Buffers as BLOBs; a plain Uint8Array view is wrapped without copying.
  return value instanceof Uint8Array && !Buffer.isBuffer(value)
    ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    : value;
}

/**
 * The SQLite driver (better-sqlite3): one file, WAL journal so readers never block the writer,
 * synchronous=FULL so a committed audit record survives a power cut, and write transactions
 * that take the write lock at BEGIN (BEGIN IMMEDIATE) so concurrent writers queue on the busy
 * timeout instead of failing with SQLITE_BUSY when a read lock would have to be upgraded.
 */
export function openSqlite(options: SqliteOptions): SqlClient {
  const readOnly = options.readOnly ?? false;
  if (!readOnly && options.file !== MEMORY) createPrivateFile(options.file);
  let db: Database.Database;
  try {
    db = new Database(options.file, {
      readonly: readOnly,
      fileMustExist: readOnly,
      timeout: options.busyTimeoutMs ?? 5000,
    });
    if (!readOnly && options.file !== MEMORY) db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // Reads the header, so a file that is not SQLite fails here rather than at first use.
    db.pragma('schema_version');
  } catch (cause) {
    throw new TresorError('STORAGE_UNAVAILABLE', `cannot open the SQLite database ${options.file}`, {
      cause,
    });
  }
  return new QueuedSqliteClient(new InlineConnection(db), queueFor(options.file));
}

/** A better-sqlite3 connection on this thread; statements run a microtask after they are asked for. */
class InlineConnection implements SqliteConnection {
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.#db = db;
  }

  query(sql: string, params: readonly SqlValue[]): Promise<SqlRow[]> {
    return later(() => this.#statement(sql).all(...params.map(toParam)) as SqlRow[]);
  }

  execute(sql: string, params: readonly SqlValue[]): Promise<number> {
    return later(() => this.#statement(sql).run(...params.map(toParam)).changes);
  }

  exec(sql: string): Promise<void> {
    return later(() => {
      this.#db.exec(sql);
    });
  }

  rollback(): Promise<void> {
    return Promise.resolve().then(() => {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
    });
  }

  batch(batch: SqliteBatch): Promise<SqliteBatchOutcome> {
    return Promise.resolve().then(() => {
      const outcome = runSqliteBatch(
        {
          exec: (sql) => {
            this.#db.exec(sql);
          },
          run: (sql, params) => this.#statement(sql).run(...params.map(toParam)).changes,
          rollback: () => {
            if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
          },
        },
        batch,
      );
      return outcome.committed ? outcome : { ...outcome, error: sqliteStorageError(outcome.error) };
    });
  }

  close(): Promise<void> {
    return Promise.resolve().then(() => {
      this.#statements.clear();
      this.#db.close();
    });
  }

  #statement(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
