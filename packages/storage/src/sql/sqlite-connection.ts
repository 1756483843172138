import { TresorError } from '@tresor/protocol';
import type { SerialQueue } from './serial-queue.js';
import type {
  BatchOptions,
  SqlClient,
  SqlExecutor,
  SqlRow,
  SqlStatement,
  SqlValue,
  TransactionOptions,
} from './sql-client.js';
import { transactionExecutor } from './transaction-executor.js';

/** A write transaction of statements known up front, run by the connection in one call. */
export interface SqliteBatch {
  readonly statements: readonly SqlStatement[];
  /** `process-crash` durability: `synchronous = NORMAL` before BEGIN, FULL again after the end. */
  readonly relaxed: boolean;
}

/**
 * How a batch ended: committed with each statement's changed-row count, or not at all (rolled
 * back, or never begun) with the mapped error. `restored`: the connection is at
 * `synchronous = FULL` again (always, for a batch that was not relaxed).
 */
export type SqliteBatchOutcome =
  | { readonly committed: true; readonly changes: number[]; readonly restored: boolean }
  | { readonly committed: false; readonly error: unknown; readonly restored: boolean };

/** The synchronous steps a batch takes on one better-sqlite3 connection; each may throw. */
export interface SqliteBatchSteps {
  exec(sql: string): void;
  run(sql: string, params: readonly SqlValue[]): number;
  /** Rolls back if a transaction is still open. */
  rollback(): void;
}

/**
 * Runs a batch synchronously: [PRAGMA synchronous = NORMAL,] BEGIN IMMEDIATE, the statements,
 * COMMIT — or ROLLBACK at the first failure — [then PRAGMA synchronous = FULL, whatever happened].
 * The worker thread runs this very function: WORKER_SOURCE in sqlite-worker-client.ts embeds its
 * source, so it must stay self-contained (no imports, no closure over module state). Errors come
 * back unmapped; the caller maps them.
 */
export function runSqliteBatch(steps: SqliteBatchSteps, batch: SqliteBatch): SqliteBatchOutcome {
  let committed: number[] | undefined;
  let error: unknown;
  try {
    if (batch.relaxed) steps.exec('PRAGMA synchronous = NORMAL');
    steps.exec('BEGIN IMMEDIATE');
    try {
      const changes = batch.statements.map(({ sql, params }) => steps.run(sql, params));
      steps.exec('COMMIT');
      committed = changes;
    } catch (err) {
      try {
        steps.rollback();
      } catch {
        // Nothing more to do: SQLite rolls back an open transaction when the next BEGIN fails.
      }
      throw err;
    }
  } catch (err) {
    error = err;
  }
  let restored = true;
  if (batch.relaxed) {
    try {
      steps.exec('PRAGMA synchronous = FULL');
    } catch {
      restored = false;
    }
  }
  return committed === undefined
    ? { committed: false, error, restored }
    : { committed: true, changes: committed, restored };
}

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
  /** Runs a whole batch (see {@link runSqliteBatch}); rejects only when the connection itself failed. */
  batch(batch: SqliteBatch): Promise<SqliteBatchOutcome>;
  close(): Promise<void>;
}

/**
 * The {@link SqlClient} of both SQLite drivers: every statement and transaction of one database
 * file in this process waits its turn on the file's queue (see `queueFor`), and write
 * transactions take the write lock at BEGIN (BEGIN IMMEDIATE), so concurrent writers wait on the
 * busy timeout instead of failing with SQLITE_BUSY when a read lock would have to be upgraded.
 * The connection runs at `synchronous = FULL` except inside a transaction asking for
 * `durability: 'process-crash'`, which sets NORMAL before its BEGIN and FULL again after it ended.
 */
export class QueuedSqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  readonly #connection: SqliteConnection;
  readonly #queue: SerialQueue;
  #closed = false;
  /** Whether the connection may still be at `synchronous = NORMAL` (a `process-crash` transaction). */
  #relaxed = false;

  constructor(connection: SqliteConnection, queue: SerialQueue) {
    this.#connection = connection;
    this.#queue = queue;
  }

  query(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    return this.#queue.run(async () => {
      await this.#ready();
      return this.#connection.query(sql, params);
    });
  }

  execute(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#queue.run(async () => {
      await this.#ready();
      return this.#connection.execute(sql, params);
    });
  }

  transaction<T>(options: TransactionOptions, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      await this.#ready();
      if (options.durability !== 'process-crash') return this.#run(options, work);
      // The connection is relaxed from here until the restore below succeeded: should the
      // restore fail, the next statement on the queue retries it first (see #ready).
      this.#relaxed = true;
      await this.#connection.exec('PRAGMA synchronous = NORMAL');
      try {
        return await this.#run(options, work);
      } finally {
        // Never masks the transaction's own outcome: a commit that happened is reported as such.
        await this.#restoreFull().catch(() => undefined);
      }
    });
  }

  /**
   * One call to the connection (one message each way with the worker driver) instead of one per
   * statement, BEGIN, COMMIT and durability switch: same locking, durability and ordering as
   * {@link transaction}, and the same fail-closed restore of `synchronous = FULL`.
   */
  executeBatch(statements: readonly SqlStatement[], options: BatchOptions = {}): Promise<number[]> {
    return this.#queue.run(async () => {
      await this.#ready();
      const relaxed = options.durability === 'process-crash';
      // Until the connection reports FULL again; should it not (or not answer), #ready retries.
      if (relaxed) this.#relaxed = true;
      const outcome = await this.#connection.batch({ statements, relaxed });
      if (outcome.restored) this.#relaxed = false;
      if (!outcome.committed) throw outcome.error;
      return outcome.changes;
    });
  }

  close(): Promise<void> {
    return this.#queue.run(async () => {
      if (this.#closed) return;
      this.#closed = true;
      await this.#connection.close();
    });
  }

  async #run<T>(options: TransactionOptions, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
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
  }

  /**
   * Fails closed: a connection still relaxed by an earlier `process-crash` transaction (its
   * restore failed) runs nothing at full durability until `synchronous = FULL` took effect.
   */
  async #ready(): Promise<void> {
    if (this.#closed) throw new TresorError('STORAGE_UNAVAILABLE', 'the SQLite database is closed');
    if (this.#relaxed) await this.#restoreFull();
  }

  async #restoreFull(): Promise<void> {
    await this.#connection.exec('PRAGMA synchronous = FULL');
    this.#relaxed = false;
  }
}
