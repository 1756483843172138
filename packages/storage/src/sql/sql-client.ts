/**
 * The one small seam between the repositories and a database engine. Repositories are written
 * once against it, with `?` placeholders; each driver (SQLite, PostgreSQL) maps errors to catalogue
 * codes and implements transactions with the engine's own locking.
 */

export type SqlDialect = 'sqlite' | 'postgres';

/** A bound parameter. Integers beyond 2^53 are passed as bigint. */
export type SqlValue = string | number | bigint | Uint8Array | null;

/**
 * A result row, column name to value. Values are not trusted: PostgreSQL returns BIGINT as text,
 * SQLite may hold what another writer put there, so repositories parse every row they read.
 */
export type SqlRow = Readonly<Record<string, unknown>>;

export interface SqlExecutor {
  readonly dialect: SqlDialect;
  /** Runs a statement that returns rows. */
  query(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]>;
  /** Runs a statement that changes rows; returns how many it changed. */
  execute(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export interface TransactionOptions {
  /**
   * `read`: a consistent snapshot (SQLite: a WAL read transaction; PostgreSQL: REPEATABLE READ
   * READ ONLY). `write`: SQLite takes the database write lock at BEGIN (BEGIN IMMEDIATE), so
   * writers queue instead of failing on upgrade; PostgreSQL runs READ COMMITTED.
   */
  readonly mode: 'read' | 'write';
  /**
   * A named lock that serialises every write transaction taking it, across processes and
   * replicas (PostgreSQL: a transaction-scoped advisory lock; SQLite: implied by the write lock).
   */
  readonly lock?: string;
  /**
   * What a committed transaction survives. Default `power-loss`.
   *
   * `power-loss`: COMMIT returns once the transaction is on stable storage; it survives the
   * process being killed, the machine crashing and a power cut (SQLite: the WAL is fsynced,
   * `synchronous=FULL`; PostgreSQL: the server's `synchronous_commit`, on unless changed).
   *
   * `process-crash`: COMMIT returns once the transaction is written but not yet flushed: it
   * survives this process being killed at any point after, but a power cut or kernel crash may
   * roll back the last such commits; the database stays consistent either way and never holds
   * half a transaction. SQLite: the transaction runs at `synchronous=NORMAL` (the WAL frames are in
   * the OS page cache when COMMIT returns; the WAL is fsynced at the next checkpoint, or by the
   * next `power-loss` commit) and the connection goes back to FULL when it ends, committed or not,
   * so no other statement runs relaxed. PostgreSQL: `SET LOCAL synchronous_commit = off` (the
   * commit is in the server's memory and reaches disk within about 3 × wal_writer_delay, 600 ms
   * by default; a crash of the PostgreSQL server itself may lose that window, this process's never).
   * Saves one fsync per commit (SQLite: 3.6 ms median on the 2-core benchmark VM).
   */
  readonly durability?: TransactionDurability;
}

/** See {@link TransactionOptions.durability}. */
export type TransactionDurability = 'power-loss' | 'process-crash';

/** A statement that changes rows, with its parameters, as {@link SqlClient.executeBatch} takes it. */
export interface SqlStatement {
  readonly sql: string;
  readonly params: readonly SqlValue[];
}

/** A batch is always a write transaction; it may take a named lock and relax its durability. */
export type BatchOptions = Omit<TransactionOptions, 'mode'>;

export interface SqlClient extends SqlExecutor {
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws.
   * `work` must use only the executor it is given (the client itself waits for the transaction).
   */
  transaction<T>(options: TransactionOptions, work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Runs statements known up front, in order, as one write transaction with `options`: the same
   * outcome as `transaction({ mode: 'write', ...options }, …)` executing each of them (all
   * committed, or the first failure's error and nothing written), resolving with each statement's
   * changed-row count. Drivers may run it without a round trip per statement: SQLite on a worker
   * thread sends the whole transaction as one message.
   */
  executeBatch(statements: readonly SqlStatement[], options?: BatchOptions): Promise<number[]>;
  /** Closes the connection(s); later calls fail with STORAGE_UNAVAILABLE. */
  close(): Promise<void>;
}
