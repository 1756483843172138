import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../conformance/manual-time.js';
import { generateTestSigner } from '../conformance/test-signer.js';
import { migrate } from '../schema/migrate.js';
import type { SqlClient } from '../sql/sql-client.js';
import { openSqlite } from '../sql/sqlite-client.js';
import type { AuditEntry } from './audit-entry.js';
import { AuditLog } from './audit-log.js';
import type { AuditRecord } from './audit-record.js';
import { SqlAuditRepository } from './audit-repository.js';
import { verifyAuditLog } from './audit-verify.js';
import type { ChainHead } from './chain-walker.js';
import { CheckpointKeys } from './checkpoint-keys.js';

const signer = generateTestSigner();
const keys = CheckpointKeys.fromJwks([signer.publicJwk]);

function release(n: number): AuditEntry {
  return {
    actor: { type: 'workload', id: `tee-key:${n}` },
    action: 'kbs.resource.release',
    target: 'resource:bench/key/model',
    outcome: 'success',
    details: { n },
  };
}

/** The SQL repository, counting its write transactions and able to hold them until released. */
class ObservedRepository extends SqlAuditRepository {
  transactions: number[] = [];
  #gate: Promise<void> = Promise.resolve();

  hold(): () => void {
    let open!: () => void;
    this.#gate = new Promise((resolve) => {
      open = resolve;
    });
    return open;
  }

  override async append(builds: readonly ((head: ChainHead) => AuditRecord)[]): Promise<AuditRecord[]> {
    this.transactions.push(builds.length);
    await this.#gate;
    return super.append(builds);
  }
}

describe('audit log group commit (SQLite in memory)', () => {
  let client: SqlClient;
  let repository: ObservedRepository;
  let log: AuditLog;

  beforeEach(async () => {
    client = openSqlite({ file: ':memory:' });
    await migrate(client);
    repository = new ObservedRepository(client);
    log = new AuditLog(repository, {
      signer,
      clock: new ManualClock(new Date('2025-03-01T00:00:00Z')),
      checkpointEvery: 50,
      checkpointIntervalMs: 1e12,
      maxBatchRecords: 40,
    });
  });
  afterEach(async () => {
    await client.close();
  });

  it('commits concurrent appends in shared transactions, each record in call order on one chain', async () => {
    const records = await Promise.all(Array.from({ length: 100 }, (_, n) => log.append(release(n))));
    expect(repository.transactions).toEqual([40, 40, 20]);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, n) => n + 1));
    expect(records.map((r) => r.details)).toEqual(Array.from({ length: 100 }, (_, n) => ({ n })));
    records.forEach((r, i) => {
      if (i > 0) expect(r.prev).toBe(records[i - 1]!.hash);
    });
    // A checkpoint still comes once 50 records are uncovered, after the batch that crossed 50:
    // records 41–80 were committed together, so it covers 80.
    expect(await verifyAuditLog(repository, keys)).toMatchObject({
      intact: true,
      records: 100,
      newestCheckpoint: 80,
    });
  });

  it('resolves an append only after the transaction holding its record has committed', async () => {
    const open = repository.hold();
    let acknowledged = false;
    const pending = log.append(release(1)).then((record) => {
      acknowledged = true;
      return record;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(repository.transactions).toEqual([1]);
    expect(acknowledged).toBe(false);
    expect(await client.query('SELECT seq FROM audit_records')).toEqual([]);
    open();
    expect((await pending).seq).toBe(1);
    expect(await client.query('SELECT seq FROM audit_records')).toEqual([{ seq: 1 }]);
  });

  it('refuses a bad entry on its own, before it can fail the records it would have been committed with', async () => {
    const answers = await Promise.allSettled([
      log.append(release(1)),
      log.append({ ...release(2), details: { prompt: 'tell me a secret' } }),
      log.append({ ...release(3), details: { big: Array.from({ length: 9 }, () => 'y'.repeat(500)) } }),
      log.append(release(4)),
    ]);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    for (const refused of [answers[1], answers[2]]) {
      expect(refused).toMatchObject({ reason: { code: 'STORAGE_RECORD_INVALID' } });
    }
    expect(repository.transactions).toEqual([2]);
    expect(await verifyAuditLog(repository, keys)).toMatchObject({ intact: true, records: 2 });
  });

  it('fails every append of a transaction that does not commit, and stores none of them', async () => {
    // A clock that breaks while the second record of the batch is built: the first is inserted by
    // then, and must be rolled back with it.
    let reads = 0;
    const breaking = new AuditLog(repository, {
      signer,
      clock: { now: () => (++reads === 2 ? new Date(Number.NaN) : new Date('2025-03-01T00:00:00Z')) },
    });
    const answers = await Promise.allSettled([breaking.append(release(1)), breaking.append(release(2))]);
    expect(repository.transactions).toEqual([2]);
    for (const answer of answers) {
      expect(answer).toMatchObject({ status: 'rejected', reason: { code: 'INTERNAL_ERROR' } });
    }
    expect(await client.query('SELECT seq FROM audit_records')).toEqual([]);
    expect((await breaking.append(release(3))).seq).toBe(1);
  });

  it('reads the database for a due checkpoint only when one may be due, and still signs at N records and after T', async () => {
    let reads = 0;
    const counting = new (class extends SqlAuditRepository {
      override read<T>(work: Parameters<SqlAuditRepository['read']>[0]): Promise<T> {
        reads++;
        return super.read(work) as Promise<T>;
      }
    })(client);
    const clock = new ManualClock(new Date('2025-03-01T00:00:00Z'));
    const small = new AuditLog(counting, { signer, clock, checkpointEvery: 5, checkpointIntervalMs: 60_000 });
    const newest = async () => (await verifyAuditLog(counting, keys)).newestCheckpoint;
    await small.append(release(1));
    expect(reads).toBe(1); // nothing known yet: the database decides
    for (let n = 2; n <= 4; n++) await small.append(release(n));
    expect(reads).toBe(1); // 4 uncovered records, the oldest 0 s old: certainly not due
    await small.append(release(5));
    expect(await newest()).toBe(5);
    const afterCount = reads;
    await small.append(release(6)); // coverage read again after a checkpoint
    await small.append(release(7));
    expect(reads).toBe(afterCount + 1);
    clock.advance(60_000);
    await small.append(release(8)); // record 6 is now 60 s old
    expect(await newest()).toBe(8);
    // Another writer appends and checkpoints in between: this log's remembered coverage is only a
    // lower bound, so it may check more often, never less.
    await small.append(release(9));
    const other = new AuditLog(new SqlAuditRepository(client), { signer, clock, checkpointEvery: 1 });
    await other.append(release(10));
    expect(await newest()).toBe(10);
    const before = reads;
    await small.append(release(11));
    expect(reads).toBe(before);
    clock.advance(60_000);
    await small.append(release(12));
    expect(await newest()).toBe(12);
    expect(await verifyAuditLog(counting, keys)).toMatchObject({ intact: true, records: 12 });
  });
});
