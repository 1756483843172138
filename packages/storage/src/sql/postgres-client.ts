import { createHash } from 'node:crypto';
import type pg from 'pg';
import { TresorError } from '@tresor/protocol';
import { postgresPlaceholders } from './postgres-placeholders.js';
import { postgresStorageError } from './postgres-errors.js';
import type {
  BatchOptions,
  SqlClient,
  SqlExecutor,
  SqlRow,
  SqlStatement,
  SqlValue,
  TransactionOptions,
} from './sql-client.js';
import { executeBatchInTransaction, transactionExecutor } from './transaction-executor.js';

export interface PostgresOptions {
  /** `postgres://` or `postgresql://` connection URL. Never logged: it may carry a password. */
  readonly url: string;
  /**
   * Schema holding Tresor's tables (letters, digits, `_`); created if missing unless read-only.
   * Default: the server's search_path.
   */
  readonly schema?: string;
  /** Every session is read-only on the server (default_transaction_read_only): for verification. */
  readonly readOnly?: boolean;
  readonly poolSize?: number;
  readonly connectTimeoutMs?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/**
 * A 64-bit advisory lock key for `name` within `schema`: two Tresor deployments sharing a server
 * in different schemas do not wait on each other's audit appends.
 */
function advisoryLockKey(schema: string, name: string): string {
  const digest = createHash('sha256').update(`tresor:${schema}:${name}`).digest();
  return BigInt.asIntN(64, digest.readBigUInt64BE(0)).toString();
}

/**
 * The PostgreSQL driver (node-postgres pool). Write transactions run READ COMMITTED, so a
 * statement after the advisory lock sees every row committed before the lock was granted;
 * reads run REPEATABLE READ READ ONLY, one snapshot for a whole verification. A `process-crash`
 * transaction sets `synchronous_commit = off` for itself only (SET LOCAL).
 */
export async function openPostgres(options: PostgresOptions): Promise<SqlClient> {
  if (!isPostgresUrl(options.url)) {
    throw new TresorError('USAGE_INVALID', 'a PostgreSQL URL starts with postgres:// or postgresql://');
  }
  const schema = options.schema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new TresorError(
      'USAGE_INVALID',
      'a schema name is 1 to 63 of a-z, 0-9 and _, not starting with a digit',
    );
  }
  const settings = [
    ...(schema === undefined ? [] : [`-c search_path=${schema}`]),
    ...(options.readOnly === true ? ['-c default_transaction_read_only=on'] : []),
  ];
  const connectionTimeoutMillis = options.connectTimeoutMs ?? 5000;
  // node-postgres is loaded by the first PostgreSQL connection only: a process on SQLite never
  // carries it (about 3.5 MiB of resident memory in the gateway, bench/harness/notes.md).
  const driver = (await import('pg')).default;
  if (schema !== undefined && options.readOnly !== true) {
    const setup = new driver.Client({ connectionString: options.url, connectionTimeoutMillis });
    try {
      await setup.connect();
      // CREATE SCHEMA IF NOT EXISTS races with itself (a unique violation in pg_namespace) when
      // replicas start together; the advisory lock makes them take turns.
      await setup.query('BEGIN');
      await setup.query('SELECT pg_advisory_xact_lock($1::bigint)', [
        advisoryLockKey(schema, 'create-schema'),
      ]);
      await setup.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await setup.query('COMMIT');
    } catch (err) {
      throw postgresStorageError(err);
    } finally {
      await setup.end().catch(() => undefined);
    }
  }
  const pool = new driver.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis,
    ...(settings.length > 0 ? { options: settings.join(' ') } : {}),
  });
  // An idle connection dropped by the server emits here; without a listener it would crash the
  // process. The next query reports the failure with a catalogue code instead.
  pool.on('error', () => undefined);
  const client = new PostgresClient(pool, schema ?? '');
  try {
    await client.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return client;
}

async function runQuery(
  on: pg.Pool | pg.PoolClient,
  sql: string,
  params: readonly SqlValue[],
): Promise<pg.QueryResult> {
  try {
    return await on.query(postgresPlaceholders(sql), [...params]);
  } catch (err) {
    throw postgresStorageError(err);
  }
}

class PostgresClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #schema: string;
  #closed = false;

  constructor(pool: pg.Pool, schema: string) {
    this.#pool = pool;
    this.#schema = schema;
  }

  async query(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    this.#open();
    return (await runQuery(this.#pool, sql, params)).rows as SqlRow[];
  }

  async execute(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    this.#open();
    return (await runQuery(this.#pool, sql, params)).rowCount ?? 0;
  }

  async transaction<T>(options: TransactionOptions, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.#open();
    let connection: pg.PoolClient;
    try {
      connection = await this.#pool.connect();
    } catch (err) {
      throw postgresStorageError(err);
    }
    const tx = transactionExecutor('postgres', {
      query: async (sql, params = []) => (await runQuery(connection, sql, params)).rows as SqlRow[],
      execute: async (sql, params = []) => (await runQuery(connection, sql, params)).rowCount ?? 0,
    });
    let broken = false;
    // While checked out, the pool's error listener does not cover this client: a server restart
    // (FATAL: terminating connection) would otherwise be an uncaught 'error' that ends the process.
    const onConnectionError = (): void => {
      broken = true;
    };
    connection.on('error', onConnectionError);
    try {
      const begin = options.mode === 'read' ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN';
      // One round trip: without parameters node-postgres sends the simple-query protocol, which
      // runs both statements. SET LOCAL ends with the transaction, committed or rolled back.
      await runQuery(
        connection,
        options.durability === 'process-crash' ? `${begin}; SET LOCAL synchronous_commit = off` : begin,
        [],
      );
      if (options.mode === 'write' && options.lock !== undefined) {
        await runQuery(connection, 'SELECT pg_advisory_xact_lock(?::bigint)', [
          advisoryLockKey(this.#schema, options.lock),
        ]);
      }
      const result = await work(tx.executor);
      await runQuery(connection, 'COMMIT', []);
      return result;
    } catch (err) {
      await connection.query('ROLLBACK').catch(() => {
        broken = true;
      });
      // Statements already mapped their errors; the work's own errors pass through unchanged.
      throw err;
    } finally {
      tx.end();
      connection.off('error', onConnectionError);
      // A connection whose ROLLBACK failed is in an unknown state: destroy it, never reuse it.
      connection.release(broken);
    }
  }

  executeBatch(statements: readonly SqlStatement[], options?: BatchOptions): Promise<number[]> {
    return executeBatchInTransaction(this, statements, options);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  #open(): void {
    if (this.#closed)
      throw new TresorError('STORAGE_UNAVAILABLE', 'the PostgreSQL connection pool is closed');
  }
}
