import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditTamper, type AuditColumn, type CheckpointColumn } from '../conformance/audit-tamper.js';
import { ManualClock } from '../conformance/manual-time.js';
import { generateTestSigner } from '../conformance/test-signer.js';
import { migrate } from '../schema/migrate.js';
import type { SqlClient } from '../sql/sql-client.js';
import { openSqlite } from '../sql/sqlite-client.js';
import type { AuditEntry } from './audit-entry.js';
import { AuditLog } from './audit-log.js';
import { SqlAuditRepository } from './audit-repository.js';
import { verifyAuditLog } from './audit-verify.js';
import { CheckpointKeys } from './checkpoint-keys.js';

/**
 * "Any single mutation of a random log is detected": random logs (1–12 records, a checkpoint
 * every 1–4 records) in an in-memory SQLite database, one random mutation of the kinds an
 * attacker with database access can make, and the verifier must refuse — naming the record
 * where that is determined. Excluded by design, as docs/storage.md explains: cutting records
 * from the tail that no checkpoint covers yet, and edits re-hashed through the unsigned tail.
 */

const signer = generateTestSigner();
const keys = CheckpointKeys.fromJwks([signer.publicJwk]);

const entry: fc.Arbitrary<AuditEntry> = fc.record({
  actor: fc.record({
    type: fc.constantFrom('admin' as const, 'workload' as const, 'system' as const),
    id: fc.stringMatching(/^[a-z0-9-]{1,12}$/),
  }),
  action: fc.constantFrom('keys.create', 'keys.destroy', 'policy.update', 'model.deploy'),
  target: fc.stringMatching(/^[a-z0-9:/-]{0,20}$/),
  outcome: fc.constantFrom('success' as const, 'denied' as const, 'failure' as const),
  details: fc.dictionary(
    fc.constantFrom('n', 'reason', 'region', 'count'),
    fc.oneof(fc.integer(), fc.stringMatching(/^[a-z ]{0,10}$/)),
  ),
});

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const columnValue: Record<AuditColumn, fc.Arbitrary<string>> = {
  recorded_at: fc
    .date({ min: new Date('2020-01-01Z'), max: new Date('2030-01-01Z'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  actor_type: fc.constantFrom('admin', 'workload', 'system', 'root'),
  actor_id: fc.stringMatching(/^[a-z0-9-]{0,12}$/),
  action: fc.constantFrom('keys.create', 'keys.destroy', 'policy.update', 'model.deploy', 'keys.export'),
  target: fc.stringMatching(/^[a-z0-9:/-]{0,20}$/),
  outcome: fc.constantFrom('success', 'denied', 'failure'),
  details: fc.dictionary(fc.constantFrom('n', 'reason'), fc.integer()).map((d) => JSON.stringify(d)),
  prev_hash: hex64,
  hash: hex64,
};

type Mutation =
  | { kind: 'delete'; seq: number }
  | { kind: 'edit'; seq: number; column: AuditColumn; value: string }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'rehash'; seq: number; target: string }
  | { kind: 'checkpoint'; at: number; column: CheckpointColumn };

const scenario = fc
  .record({
    entries: fc.array(entry, { minLength: 1, maxLength: 12 }),
    every: fc.integer({ min: 1, max: 4 }),
  })
  .chain(({ entries, every }) => {
    const n = entries.length;
    const lastCheckpoint = Math.floor(n / every) * every;
    const seq = fc.integer({ min: 1, max: n });
    // Deleting the last record is a tail cut; detectable only when a checkpoint covers it.
    const deletable = Array.from({ length: n }, (_, i) => i + 1).filter((s) => s < n || s <= lastCheckpoint);
    const options: fc.Arbitrary<Mutation>[] = [
      fc
        .record({ seq, column: fc.constantFrom(...(Object.keys(columnValue) as AuditColumn[])) })
        .chain(({ seq: s, column }) =>
          columnValue[column].map((value): Mutation => ({ kind: 'edit', seq: s, column, value })),
        ),
    ];
    if (deletable.length > 0) {
      options.push(fc.constantFrom(...deletable).map((s): Mutation => ({ kind: 'delete', seq: s })));
    }
    if (n >= 2) {
      options.push(
        fc
          .tuple(seq, seq)
          .filter(([a, b]) => a !== b)
          .map(([a, b]): Mutation => ({ kind: 'swap', a: Math.min(a, b), b: Math.max(a, b) })),
      );
    }
    if (lastCheckpoint > 0) {
      options.push(
        fc.integer({ min: 0, max: lastCheckpoint - 1 }).map((keep): Mutation => ({ kind: 'truncate', keep })),
        fc
          .record({
            seq: fc.integer({ min: 1, max: lastCheckpoint }),
            target: fc.stringMatching(/^[A-Z]{1,8}$/),
          })
          .map((m): Mutation => ({ kind: 'rehash', ...m })),
        fc
          .record({
            at: fc.integer({ min: 1, max: lastCheckpoint / every }).map((k) => k * every),
            column: fc.constantFrom<CheckpointColumn>(
              'kind',
              'record_count',
              'head_hash',
              'signed_at',
              'key_id',
              'signature',
            ),
          })
          .map((m): Mutation => ({ kind: 'checkpoint', ...m })),
      );
    }
    return fc.record({
      entries: fc.constant(entries),
      every: fc.constant(every),
      mutation: fc.oneof(...options),
    });
  });

/** Applies the mutation; returns false when it changed nothing (an edit to the same value). */
async function mutate(tamper: AuditTamper, m: Mutation): Promise<boolean> {
  switch (m.kind) {
    case 'delete':
      await tamper.deleteRecord(m.seq);
      return true;
    case 'edit':
      if ((await tamper.column(m.seq, m.column)) === m.value) return false;
      await tamper.setColumn(m.seq, m.column, m.value);
      return true;
    case 'swap':
      await tamper.swap(m.a, m.b);
      return true;
    case 'truncate':
      await tamper.truncateAfter(m.keep);
      return true;
    case 'rehash':
      if ((await tamper.column(m.seq, 'target')) === m.target) return false;
      await tamper.editAndRehash(m.seq, m.target);
      return true;
    case 'checkpoint': {
      const replacement: Record<CheckpointColumn, string | number> = {
        kind: 'anchor',
        record_count: m.at + 1000,
        head_hash: 'c'.repeat(64),
        signed_at: '2040-01-01T00:00:00.000Z',
        key_id: 'sig-someone-else',
        algorithm: 'ES384',
        signature: String(await tamper.checkpointColumn('periodic', m.at, 'signature')).replace(/^./, (c) =>
          c === 'A' ? 'B' : 'A',
        ),
      };
      await tamper.setCheckpointColumn('periodic', m.at, m.column, replacement[m.column]);
      return true;
    }
  }
}

function expectedSeq(m: Mutation, every: number): number | null {
  switch (m.kind) {
    case 'delete':
    case 'edit':
      return m.seq;
    case 'swap':
      return m.a;
    case 'truncate':
      return m.keep + 1;
    case 'rehash':
      return Math.ceil(m.seq / every) * every;
    case 'checkpoint':
      return null;
  }
}

describe('any single mutation of a random audit log is detected (SQLite in memory)', () => {
  let client: SqlClient;
  beforeAll(() => {
    client = openSqlite({ file: ':memory:' });
  });
  afterAll(async () => {
    await client.close();
  });

  it('refuses the log and names the first bad record', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ entries, every, mutation }) => {
        // Every table of every migration, newest first (later tables may refer to earlier ones).
        const tables = await client.query(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid DESC",
        );
        for (const { name } of tables) await client.execute(`DROP TABLE IF EXISTS "${String(name)}"`);
        await migrate(client);
        const repository = new SqlAuditRepository(client);
        const clock = new ManualClock(new Date('2025-03-01T00:00:00Z'));
        const log = new AuditLog(repository, {
          signer,
          clock,
          checkpointEvery: every,
          checkpointIntervalMs: 1e12,
        });
        for (const e of entries) {
          await log.append(e);
          clock.advance(1000);
        }
        expect((await verifyAuditLog(repository, keys)).intact).toBe(true);
        fc.pre(await mutate(new AuditTamper(client), mutation));
        const result = await verifyAuditLog(repository, keys, { pageSize: 3 });
        expect(result.intact).toBe(false);
        const problem = result.problem!;
        if (mutation.kind === 'checkpoint') expect(problem.code).toBe('AUDIT_CHECKPOINT_INVALID');
        // Deleting the last record cuts the tail: reported as truncation of what a checkpoint covers.
        else if (
          mutation.kind === 'truncate' ||
          (mutation.kind === 'delete' && mutation.seq === entries.length)
        ) {
          expect(problem.code).toBe('AUDIT_LOG_TRUNCATED');
        } else expect(problem.code).toBe('AUDIT_CHAIN_BROKEN');
        expect(problem.seq).toBe(expectedSeq(mutation, every));
      }),
      { numRuns: 1000 },
    );
  });
});
