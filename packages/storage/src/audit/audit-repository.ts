import { TresorError } from '@tresor/protocol';
import { integerValue } from '../sql/row-values.js';
import type { SqlClient, SqlExecutor, SqlRow, SqlValue } from '../sql/sql-client.js';
import { encodeSignature, type AuditCheckpoint } from './audit-checkpoint.js';
import { encodeDetails, GENESIS_HASH, isHash, type AuditRecord } from './audit-record.js';
import type { ChainHead } from './chain-walker.js';
import type { StoredAuditRow } from './stored-record.js';

/** A checkpoint row mapped to checkpoint fields, not yet trusted (the signature is base64url text). */
export type StoredCheckpointRow = Readonly<Record<keyof AuditCheckpoint, unknown>>;

/** Reads the log inside one consistent snapshot. */
export interface AuditLogReader {
  /** What the next record links to: the newest record, else the newest anchor, else genesis. */
  head(): Promise<ChainHead>;
  /** Up to `limit` rows with a sequence number above `afterSeq`, in sequence order. */
  records(afterSeq: number, limit: number): Promise<StoredAuditRow[]>;
  /** Every checkpoint, by record count. */
  checkpoints(): Promise<StoredCheckpointRow[]>;
  /** The checkpoint (either kind) with the highest record count. */
  latestCheckpoint(): Promise<StoredCheckpointRow | undefined>;
  /** The lowest sequence number of a record made at or after `time` (ISO 8601 UTC). */
  firstSeqAtOrAfter(time: string): Promise<number | undefined>;
}

/**
 * Storage of the audit log. Writers are serialised by the `audit` lock (PostgreSQL advisory lock;
 * SQLite write lock), so appends from several processes never fork the chain: each reads the
 * head and inserts its successor inside one transaction. The sequence number is also the primary
 * key, so even a writer that bypassed the lock could not insert a second record N.
 */
export interface AuditRepository {
  read<T>(work: (reader: AuditLogReader) => Promise<T>): Promise<T>;
  /**
   * In one serialised transaction: reads the head, then lets each builder in turn make the next
   * record (the head advancing with each) and inserts it. All are committed together or none is.
   */
  append(builds: readonly ((head: ChainHead) => AuditRecord)[]): Promise<AuditRecord[]>;
  /** Stores a checkpoint; false when one of that kind and count exists already (another writer made it). */
  addCheckpoint(checkpoint: AuditCheckpoint): Promise<boolean>;
  /**
   * Stores `anchor` and deletes records 1..anchor.count and the checkpoints before it, in one
   * transaction, after checking that record `anchor.count` still has hash `anchor.head`.
   * Returns how many records it deleted (0 when another process purged them already).
   */
  purgeThrough(anchor: AuditCheckpoint): Promise<number>;
}

const RECORD_COLUMNS =
  'seq, recorded_at, actor_type, actor_id, action, target, outcome, details, prev_hash, hash';
const RECORD_COLUMN_COUNT = 10;
const RECORD_PLACEHOLDERS = `(${Array(RECORD_COLUMN_COUNT).fill('?').join(', ')})`;
/** Records per INSERT statement: 640 parameters, far below SQLite's 32766 and PostgreSQL's 65535. */
const INSERT_CHUNK = 64;
const CHECKPOINT_COLUMNS = 'kind, record_count, head_hash, signed_at, key_id, algorithm, signature';

function storedRecord(row: SqlRow): StoredAuditRow {
  return {
    // PostgreSQL returns BIGINT as text; anything that is not an integer stays as it was, and is refused later.
    seq: integerValue(row.seq) ?? row.seq,
    time: row.recorded_at,
    actorType: row.actor_type,
    actorId: row.actor_id,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    details: row.details,
    prev: row.prev_hash,
    hash: row.hash,
  };
}

function storedCheckpoint(row: SqlRow): StoredCheckpointRow {
  return {
    kind: row.kind,
    count: integerValue(row.record_count) ?? row.record_count,
    head: row.head_hash,
    time: row.signed_at,
    keyId: row.key_id,
    algorithm: row.algorithm,
    signature: row.signature,
  };
}

async function readHead(tx: SqlExecutor): Promise<ChainHead> {
  const [last] = await tx.query('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1');
  if (last !== undefined) {
    const count = integerValue(last.seq);
    if (count === undefined || count < 1 || !isHash(last.hash)) {
      throw new TresorError(
        'AUDIT_CHAIN_BROKEN',
        'the newest audit record is malformed; run `tresor audit verify`',
      );
    }
    return { count, hash: last.hash };
  }
  const [anchor] = await tx.query(
    "SELECT record_count, head_hash FROM audit_checkpoints WHERE kind = 'anchor' ORDER BY record_count DESC LIMIT 1",
  );
  if (anchor !== undefined) {
    const count = integerValue(anchor.record_count);
    if (count === undefined || count < 1 || !isHash(anchor.head_hash)) {
      throw new TresorError('AUDIT_CHECKPOINT_INVALID', 'the newest anchor checkpoint is malformed');
    }
    return { count, hash: anchor.head_hash };
  }
  return { count: 0, hash: GENESIS_HASH };
}

function reader(tx: SqlExecutor): AuditLogReader {
  return {
    head: () => readHead(tx),
    records: async (afterSeq, limit) =>
      (
        await tx.query(`SELECT ${RECORD_COLUMNS} FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?`, [
          afterSeq,
          limit,
        ])
      ).map(storedRecord),
    checkpoints: async () =>
      (await tx.query(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY record_count, kind`)).map(
        storedCheckpoint,
      ),
    latestCheckpoint: async () => {
      const [row] = await tx.query(
        `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY record_count DESC, kind LIMIT 1`,
      );
      return row === undefined ? undefined : storedCheckpoint(row);
    },
    firstSeqAtOrAfter: async (time) => {
      const [row] = await tx.query('SELECT MIN(seq) AS seq FROM audit_records WHERE recorded_at >= ?', [
        time,
      ]);
      return row === undefined || row.seq === null ? undefined : integerValue(row.seq);
    },
  };
}

function insertCheckpoint(tx: SqlExecutor, checkpoint: AuditCheckpoint): Promise<number> {
  return tx.execute(
    `INSERT INTO audit_checkpoints (${CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (kind, record_count) DO NOTHING`,
    [
      checkpoint.kind,
      checkpoint.count,
      checkpoint.head,
      checkpoint.time,
      checkpoint.keyId,
      checkpoint.algorithm,
      encodeSignature(checkpoint.signature),
    ],
  );
}

/** The audit repository over either SQL driver. */
export class SqlAuditRepository implements AuditRepository {
  readonly #client: SqlClient;

  constructor(client: SqlClient) {
    this.#client = client;
  }

  read<T>(work: (reader: AuditLogReader) => Promise<T>): Promise<T> {
    return this.#client.transaction({ mode: 'read' }, (tx) => work(reader(tx)));
  }

  append(builds: readonly ((head: ChainHead) => AuditRecord)[]): Promise<AuditRecord[]> {
    return this.#client.transaction({ mode: 'write', lock: 'audit' }, async (tx) => {
      let head = await readHead(tx);
      const records: AuditRecord[] = [];
      const values: SqlValue[] = [];
      for (const build of builds) {
        const record = build(head);
        if (record.seq !== head.count + 1 || record.prev !== head.hash) {
          throw new TresorError('INTERNAL_ERROR', 'an audit record was built for another head of the chain');
        }
        const details = encodeDetails(record.details, (problem) => {
          throw new TresorError('STORAGE_RECORD_INVALID', `audit entry: ${problem}`);
        });
        values.push(
          record.seq,
          record.time,
          record.actor.type,
          record.actor.id,
          record.action,
          record.target,
          record.outcome,
          details,
          record.prev,
          record.hash,
        );
        records.push(record);
        head = { count: record.seq, hash: record.hash };
      }
      // One statement for the whole batch (a round trip fewer per record on a worker thread or a
      // network connection), in chunks well below both engines' limits on bound parameters.
      for (let start = 0; start < records.length; start += INSERT_CHUNK) {
        const rows = Math.min(INSERT_CHUNK, records.length - start);
        await tx.execute(
          `INSERT INTO audit_records (${RECORD_COLUMNS}) VALUES ${Array(rows).fill(RECORD_PLACEHOLDERS).join(', ')}`,
          values.slice(start * RECORD_COLUMN_COUNT, (start + rows) * RECORD_COLUMN_COUNT),
        );
      }
      return records;
    });
  }

  addCheckpoint(checkpoint: AuditCheckpoint): Promise<boolean> {
    return this.#client.transaction({ mode: 'write', lock: 'audit' }, async (tx) => {
      return (await insertCheckpoint(tx, checkpoint)) === 1;
    });
  }

  purgeThrough(anchor: AuditCheckpoint): Promise<number> {
    if (anchor.kind !== 'anchor')
      throw new TresorError('INTERNAL_ERROR', 'a purge needs an anchor checkpoint');
    return this.#client.transaction({ mode: 'write', lock: 'audit' }, async (tx) => {
      const [row] = await tx.query('SELECT hash FROM audit_records WHERE seq = ?', [anchor.count]);
      if (row === undefined) {
        const head = await readHead(tx);
        const [done] = await tx.query(
          "SELECT 1 AS found FROM audit_checkpoints WHERE kind = 'anchor' AND record_count >= ?",
          [anchor.count],
        );
        if (done !== undefined && head.count >= anchor.count) return 0;
        throw new TresorError(
          'AUDIT_CHAIN_BROKEN',
          `record ${anchor.count} vanished while it was being purged`,
        );
      }
      if (row.hash !== anchor.head) {
        throw new TresorError(
          'AUDIT_CHAIN_BROKEN',
          `record ${anchor.count} changed while it was being purged`,
        );
      }
      await insertCheckpoint(tx, anchor);
      const deleted = await tx.execute('DELETE FROM audit_records WHERE seq <= ?', [anchor.count]);
      await tx.execute('DELETE FROM audit_checkpoints WHERE record_count < ?', [anchor.count]);
      return deleted;
    });
  }
}
