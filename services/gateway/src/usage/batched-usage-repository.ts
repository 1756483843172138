import {
  GroupCommit,
  SqlUsageRepository,
  type SqlClient,
  type SqlExecutor,
  type SqlStatement,
  type SqlValue,
  type TenantFieldCiphers,
  type TransactionDurability,
  type UsageQuery,
  type UsageRecord,
  type UsageRecordInput,
  type UsageRepository,
  type UsageTotals,
} from '@tresor/storage';

/** Collects the statements a repository runs instead of running them (recording only inserts). */
class StatementRecorder implements SqlClient {
  readonly statements: SqlStatement[] = [];
  constructor(readonly dialect: SqlClient['dialect']) {}
  query(): Promise<never> {
    return Promise.reject(new Error('a usage record only inserts'));
  }
  execute(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    this.statements.push({ sql, params });
    return Promise.resolve(1);
  }
  transaction<T>(_options: unknown, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return work(this);
  }
  executeBatch(statements: readonly SqlStatement[]): Promise<number[]> {
    this.statements.push(...statements);
    return Promise.resolve(statements.map(() => 1));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Most records one commit holds (a few hundred rows of about 200 bytes). */
const MAX_BATCH = 256;

export interface BatchedUsageOptions {
  /**
   * What an acknowledged record survives (config `usage.durability`): `process-crash` (default)
   * commits without a WAL fsync, so a record survives the gateway being killed but the last ones
   * may be lost to a power cut; `power-loss` fsyncs every commit. See TransactionOptions.
   */
  readonly durability?: TransactionDurability;
  /** Schedules a batch's commit (tests hold it back); default setImmediate, one event-loop turn. */
  readonly defer?: (run: () => void) => void;
}

/**
 * The gateway's usage records, group-committed: every record of the requests that finished in the
 * same event-loop turn (and while the previous commit was in flight) is written by one transaction,
 * so N concurrent requests cost one commit (one round trip with PostgreSQL, one WAL write with
 * SQLite, plus its fsync at `power-loss` durability) instead of N, and the record is no longer a
 * statement of its own on the request path.
 *
 * Nothing is acknowledged early: `record` resolves only once the transaction holding the record has
 * committed at the configured durability (the gateway awaits it before the answer's last byte).
 * Validation and the sealing of the model name run first, per record, exactly as
 * {@link SqlUsageRepository} does them (its own code builds the INSERT); a record refused there
 * fails alone. When a batch's transaction fails (a duplicate request id, say), each of its records
 * is written again in a transaction of its own, so one bad record never costs its neighbours theirs.
 */
export class BatchedUsageRepository implements UsageRepository {
  readonly #db: SqlClient;
  readonly #ciphers: TenantFieldCiphers;
  readonly #reads: SqlUsageRepository;
  readonly #commits: GroupCommit<SqlStatement, Error | undefined>;
  readonly #durability: TransactionDurability;

  constructor(db: SqlClient, ciphers: TenantFieldCiphers, options: BatchedUsageOptions = {}) {
    this.#db = db;
    this.#ciphers = ciphers;
    this.#durability = options.durability ?? 'process-crash';
    this.#reads = new SqlUsageRepository(db, ciphers);
    this.#commits = new GroupCommit((batch) => this.#commit(batch), MAX_BATCH, options.defer);
  }

  async record(input: UsageRecordInput): Promise<void> {
    const recorder = new StatementRecorder(this.#db.dialect);
    await new SqlUsageRepository(recorder, this.#ciphers).record(input);
    for (const statement of recorder.statements) {
      const failure = await this.#commits.submit(statement);
      if (failure !== undefined) throw failure;
    }
  }

  list(query: UsageQuery): Promise<UsageRecord[]> {
    return this.#reads.list(query);
  }

  totals(query: Omit<UsageQuery, 'limit'>): Promise<UsageTotals> {
    return this.#reads.totals(query);
  }

  purgeBefore(cutoff: Date): Promise<number> {
    return this.#reads.purgeBefore(cutoff);
  }

  /** Outputs per statement: undefined once committed, else the error it failed with. */
  async #commit(batch: readonly SqlStatement[]): Promise<(Error | undefined)[]> {
    try {
      await this.#write(batch);
      return batch.map(() => undefined);
    } catch (error) {
      if (batch.length === 1) return [asError(error)];
    }
    const outputs: (Error | undefined)[] = [];
    for (const statement of batch) {
      outputs.push(
        await this.#write([statement]).then(
          () => undefined,
          (error: unknown) => asError(error),
        ),
      );
    }
    return outputs;
  }

  /**
   * One write transaction at the configured durability, its statements known up front: the SQLite
   * connection runs it in one call (BEGIN, the INSERTs and COMMIT, with the durability switch), a
   * single message when the connection is on a worker thread, instead of a round trip per step.
   */
  async #write(statements: readonly SqlStatement[]): Promise<void> {
    await this.#db.executeBatch(statements, { durability: this.#durability });
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
