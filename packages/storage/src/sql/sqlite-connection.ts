import { TresorError } from '@tresor/protocol';
import type { SerialQueue } from './serial-queue.js';
import type { SqlClient, SqlExecutor, SqlRow, SqlValue, TransactionOptions } from './sql-client.js';
import { transactionExecutor } from './transaction-executor.js';

/**
 * One SQLite connection, as both drivers provide it: the inline driver runs each statement on the
 * calling thread, the worker driver posts it to its thread. Every promise rejects with the mapped
 * catalogue error.
 */
export interface SqliteConnection {
  query(sql: string, params: readonly SqlValue[]): Promise<SqlRow[]>;
  execute(sql: string, params: readonly SqlValue[]): Promise<number>;
  /** Runs a statement without parameters (BEGIN, COMMIT). */
  exec(sql: string): Promise<void>;
  /** Rolls back if a transaction is still open: after a failed COMMIT SQLite may have done so already. */
  rollback(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The {@link SqlClient} of both SQLite drivers: every statement and transaction of one database
 * file in this process waits its turn on the file's queue (see `queueFor`), and write
 * transactions take the write lock at BEGIN (BEGIN IMMEDIATE), so concurrent writers wait on the
 * busy timeout instead of failing with SQLITE_BUSY when a read lock would have to be upgraded.
 */
export class QueuedSqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  readonly #connection: SqliteConnection;
  readonly #queue: SerialQueue;
  #closed = false;

  constructor(connection: SqliteConnection, queue: SerialQueue) {
    this.#connection = connection;
    this.#queue = queue;
  }

  query(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    return this.#queue.run(() => {
      this.#open();
      return this.#connection.query(sql, params);
    });
  }

  execute(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#queue.run(() => {
      this.#open();
      return this.#connection.execute(sql, params);
    });
  }

  transaction<T>(options: TransactionOptions, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      this.#open();
      const connection = this.#connection;
      const tx = transactionExecutor('sqlite', connection);
      await connection.exec(options.mode === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN DEFERRED');
      try {
        const result = await work(tx.executor);
        tx.end();
        await connection.exec('COMMIT');
        return result;
      } catch (err) {
        tx.end();
        // Statements already mapped their errors; the work's own errors pass through unchanged.
        await connection.rollback();
        throw err;
      }
    });
  }

  close(): Promise<void> {
    return this.#queue.run(async () => {
      if (this.#closed) return;
      this.#closed = true;
      await this.#connection.close();
    });
  }

  #open(): void {
    if (this.#closed) throw new TresorError('STORAGE_UNAVAILABLE', 'the SQLite database is closed');
  }
}
