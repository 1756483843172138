import { TresorError } from '@tresor/protocol';
import type { BatchOptions, SqlClient, SqlDialect, SqlExecutor, SqlStatement } from './sql-client.js';

/** The statements of one transaction's connection, as a driver runs them. */
export type TransactionStatements = Pick<SqlExecutor, 'query' | 'execute'>;

/** The executor handed to a transaction's work, and the switch that retires it. */
export interface TransactionExecutor {
  readonly executor: SqlExecutor;
  /** After this, the executor refuses every statement. */
  end(): void;
}

/**
 * Wraps a transaction's connection so that an executor the work leaked (kept past its promise)
 * fails with INTERNAL_ERROR instead of running statements outside the transaction — or inside the
 * next one on the same connection, where they would commit with someone else's work.
 */
export function transactionExecutor(
  dialect: SqlDialect,
  statements: TransactionStatements,
): TransactionExecutor {
  let active = true;
  const guard = (): void => {
    if (!active) throw new TresorError('INTERNAL_ERROR', 'a transaction executor was used after it ended');
  };
  return {
    executor: {
      dialect,
      query: async (sql, params = []) => {
        guard();
        return statements.query(sql, params);
      },
      execute: async (sql, params = []) => {
        guard();
        return statements.execute(sql, params);
      },
    },
    end: () => {
      active = false;
    },
  };
}

/**
 * {@link SqlClient.executeBatch} as a driver without a faster way runs it: one write transaction
 * executing the statements in order.
 */
export function executeBatchInTransaction(
  client: Pick<SqlClient, 'transaction'>,
  statements: readonly SqlStatement[],
  options: BatchOptions = {},
): Promise<number[]> {
  return client.transaction({ ...options, mode: 'write' }, async (tx) => {
    const changes: number[] = [];
    for (const { sql, params } of statements) changes.push(await tx.execute(sql, params));
    return changes;
  });
}
