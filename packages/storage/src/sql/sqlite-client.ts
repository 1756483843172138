import { closeSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { TresorError } from '@tresor/protocol';
import { SerialQueue } from './serial-queue.js';
import type { SqlClient, SqlExecutor, SqlRow, SqlValue, TransactionOptions } from './sql-client.js';
import { sqliteStorageError } from './sqlite-errors.js';

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
  return new SqliteClient(db, queueFor(options.file));
}

class SqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #queue: SerialQueue;
  readonly #statements = new Map<string, Database.Statement>();
  #closed = false;

  constructor(db: Database.Database, queue: SerialQueue) {
    this.#db = db;
    this.#queue = queue;
  }

  query(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    return this.#queue.run(() => this.#all(sql, params));
  }

  execute(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#queue.run(() => this.#run(sql, params));
  }

  transaction<T>(options: TransactionOptions, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      this.#open();
      let active = true;
      const guard = (): void => {
        if (!active)
          throw new TresorError('INTERNAL_ERROR', 'a transaction executor was used after it ended');
      };
      const tx: SqlExecutor = {
        dialect: 'sqlite',
        query: (sql, params = []) => {
          guard();
          return Promise.resolve().then(() => this.#all(sql, params));
        },
        execute: (sql, params = []) => {
          guard();
          return Promise.resolve().then(() => this.#run(sql, params));
        },
      };
      this.#exec(options.mode === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN DEFERRED');
      try {
        const result = await work(tx);
        this.#exec('COMMIT');
        return result;
      } catch (err) {
        // Statements already mapped their errors; the work's own errors pass through unchanged.
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
        throw err;
      } finally {
        active = false;
      }
    });
  }

  close(): Promise<void> {
    return this.#queue.run(() => {
      if (this.#closed) return;
      this.#closed = true;
      this.#statements.clear();
      this.#db.close();
    });
  }

  #open(): void {
    if (this.#closed) throw new TresorError('STORAGE_UNAVAILABLE', 'the SQLite database is closed');
  }

  #statement(sql: string): Database.Statement {
    this.#open();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #all(sql: string, params: readonly SqlValue[]): SqlRow[] {
    try {
      return this.#statement(sql).all(...params.map(toParam)) as SqlRow[];
    } catch (err) {
      throw sqliteStorageError(err);
    }
  }

  #run(sql: string, params: readonly SqlValue[]): number {
    try {
      return this.#statement(sql).run(...params.map(toParam)).changes;
    } catch (err) {
      throw sqliteStorageError(err);
    }
  }

  #exec(sql: string): void {
    try {
      this.#db.exec(sql);
    } catch (err) {
      throw sqliteStorageError(err);
    }
  }
}
