import { hashAuditRecordBody } from '../audit/audit-record.js';
import { parseStoredAuditRow } from '../audit/stored-record.js';
import type { SqlClient, SqlValue } from '../sql/sql-client.js';

/** Columns of `audit_records` an attacker with database access can rewrite. */
export type AuditColumn =
  | 'recorded_at'
  | 'actor_type'
  | 'actor_id'
  | 'action'
  | 'target'
  | 'outcome'
  | 'details'
  | 'prev_hash'
  | 'hash';

export type CheckpointColumn =
  'kind' | 'record_count' | 'head_hash' | 'signed_at' | 'key_id' | 'algorithm' | 'signature';

/**
 * What someone with write access to the database can do to the audit log, in raw SQL, for the
 * tamper tests. Like a real attacker it first drops the append-only trigger.
 */
export class AuditTamper {
  readonly #client: SqlClient;

  constructor(client: SqlClient) {
    this.#client = client;
  }

  async #dropTrigger(): Promise<void> {
    await this.#client.execute(
      this.#client.dialect === 'sqlite'
        ? 'DROP TRIGGER IF EXISTS audit_records_append_only'
        : 'DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records',
    );
  }

  async deleteRecord(seq: number): Promise<void> {
    await this.#client.execute('DELETE FROM audit_records WHERE seq = ?', [seq]);
  }

  async truncateAfter(seq: number): Promise<void> {
    await this.#client.execute('DELETE FROM audit_records WHERE seq > ?', [seq]);
  }

  async setColumn(seq: number, column: AuditColumn, value: SqlValue): Promise<void> {
    await this.#dropTrigger();
    await this.#client.execute(`UPDATE audit_records SET ${column} = ? WHERE seq = ?`, [value, seq]);
  }

  async column(seq: number, column: AuditColumn): Promise<unknown> {
    const [row] = await this.#client.query(`SELECT ${column} AS value FROM audit_records WHERE seq = ?`, [
      seq,
    ]);
    return row?.value;
  }

  /** Swaps the positions of two records (their sequence numbers). */
  async swap(a: number, b: number): Promise<void> {
    await this.#dropTrigger();
    await this.#client.execute('UPDATE audit_records SET seq = ? WHERE seq = ?', [-1, a]);
    await this.#client.execute('UPDATE audit_records SET seq = ? WHERE seq = ?', [a, b]);
    await this.#client.execute('UPDATE audit_records SET seq = ? WHERE seq = ?', [b, -1]);
  }

  /**
   * The careful attacker: rewrites record `seq`'s target, then recomputes its hash and every
   * later record's prev and hash, so the chain links again. Only a signed checkpoint catches it.
   */
  async editAndRehash(seq: number, target: string): Promise<void> {
    await this.#dropTrigger();
    const rows = await this.#client.query(
      'SELECT seq, recorded_at, actor_type, actor_id, action, target, outcome, details, prev_hash, hash FROM audit_records WHERE seq >= ? ORDER BY seq',
      [seq],
    );
    let prev: string | undefined;
    for (const row of rows) {
      const record = parseStoredAuditRow(
        {
          seq: Number(row.seq),
          time: row.recorded_at,
          actorType: row.actor_type,
          actorId: row.actor_id,
          action: row.action,
          target: row.target,
          outcome: row.outcome,
          details: row.details,
          prev: row.prev_hash,
          hash: row.hash,
        },
        (problem) => {
          throw new Error(problem);
        },
      );
      const body = {
        ...record,
        target: record.seq === seq ? target : record.target,
        prev: prev ?? record.prev,
      };
      prev = hashAuditRecordBody(body);
      await this.#client.execute(
        'UPDATE audit_records SET target = ?, prev_hash = ?, hash = ? WHERE seq = ?',
        [body.target, body.prev, prev, record.seq],
      );
    }
  }

  async setCheckpointColumn(
    kind: string,
    count: number,
    column: CheckpointColumn,
    value: SqlValue,
  ): Promise<void> {
    await this.#client.execute(
      `UPDATE audit_checkpoints SET ${column} = ? WHERE kind = ? AND record_count = ?`,
      [value, kind, count],
    );
  }

  async checkpointColumn(kind: string, count: number, column: CheckpointColumn): Promise<unknown> {
    const [row] = await this.#client.query(
      `SELECT ${column} AS value FROM audit_checkpoints WHERE kind = ? AND record_count = ?`,
      [kind, count],
    );
    return row?.value;
  }

  async deleteCheckpoint(kind: string, count: number): Promise<void> {
    await this.#client.execute('DELETE FROM audit_checkpoints WHERE kind = ? AND record_count = ?', [
      kind,
      count,
    ]);
  }

  async deleteAllCheckpoints(): Promise<void> {
    await this.#client.execute('DELETE FROM audit_checkpoints');
  }
}
