import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkpointSigningInput, encodeSignature } from '../audit/audit-checkpoint.js';
import type { AuditProblem } from '../audit/audit-verify.js';
import type { SqlValue } from '../sql/sql-client.js';
import type { AuditColumn } from './audit-tamper.js';
import { appendSamples, openAuditHarness, type AuditHarness } from './audit-harness.js';
import type { StorageFixture, TestDatabase } from './storage-fixture.js';
import { generateTestSigner } from './test-signer.js';

/** Each edit keeps the column's type, so only the hash chain can tell. */
const EDITS: readonly [AuditColumn, SqlValue][] = [
  ['recorded_at', '2025-01-01T00:06:00.001Z'],
  ['actor_type', 'workload'],
  ['actor_id', 'adm-key-02'],
  ['action', 'keys.export'],
  ['target', 'tenant:acme/key:kek-70'],
  ['outcome', 'denied'],
  ['details', '{"backend":"file","labels":["a","b"],"n":70}'],
  ['prev_hash', 'f'.repeat(64)],
  ['hash', 'e'.repeat(64)],
  // Malformed values: refused by the parser, still named as the edited record.
  ['recorded_at', 'yesterday'],
  ['details', '{"n":7,"n":7}'],
  ['details', '{ "backend": "file", "labels": ["a", "b"], "n": 7 }'],
  ['outcome', ''],
];

/**
 * The log every test starts from: 12 records, checkpoints at 5 and 10 (records 11 and 12 are
 * chained but not yet signed).
 */
export function tamperSuite(fixture: StorageFixture): void {
  describe('audit tampering is detected and the first bad record named', () => {
    let db: TestDatabase;
    let h: AuditHarness;
    beforeEach(async () => {
      db = await fixture.create();
      h = await openAuditHarness(db);
      await appendSamples(h, 12);
    });
    afterEach(async () => {
      await h.close();
      await db.dispose();
    });

    const problem = async (): Promise<AuditProblem | undefined> => {
      const result = await h.verify();
      expect(result.intact).toBe(result.problem === undefined);
      return result.problem;
    };

    it('reports the untouched log intact', async () => {
      expect(await problem()).toBeUndefined();
    });

    it.each([1, 7, 11, 12])('deleting record %i', async (seq) => {
      await h.tamper.deleteRecord(seq);
      if (seq === 12) {
        // The newest record is not under a checkpoint yet: see the truncation tests for the limit.
        expect(await problem()).toBeUndefined();
        return;
      }
      expect(await problem()).toMatchObject({
        code: 'AUDIT_CHAIN_BROKEN',
        seq,
        message: expect.stringMatching(new RegExp(`^record ${seq} is missing`)) as unknown,
      });
    });

    it('deleting a run of records names the first', async () => {
      for (const seq of [3, 4, 5, 6]) await h.tamper.deleteRecord(seq);
      expect(await problem()).toMatchObject({
        code: 'AUDIT_CHAIN_BROKEN',
        seq: 3,
        message: expect.stringContaining('records 3 to 6 are missing') as unknown,
      });
    });

    it.each(EDITS.map(([column, value], i) => [i, column, value] as const))(
      'edit %i: record 7, column %s',
      async (_, column, value) => {
        await h.tamper.setColumn(7, column, value);
        expect(await problem()).toMatchObject({ code: 'AUDIT_CHAIN_BROKEN', seq: 7 });
      },
    );

    it.each([
      [2, 9],
      [11, 12],
      [6, 7],
    ])('reordering records %i and %i names the earlier', async (a, b) => {
      await h.tamper.swap(a, b);
      expect(await problem()).toMatchObject({ code: 'AUDIT_CHAIN_BROKEN', seq: a });
    });

    it('an edit with the rest of the chain re-hashed is caught at the next signed checkpoint', async () => {
      await h.tamper.editAndRehash(7, 'tenant:someone-else');
      expect(await problem()).toMatchObject({
        code: 'AUDIT_CHAIN_BROKEN',
        seq: 10,
        checkpoint: { kind: 'periodic', count: 10 },
        message: expect.stringContaining('a record in 6..10 was changed') as unknown,
      });
    });

    it.each([9, 4, 0])('truncating the tail after record %i, past a checkpoint', async (keep) => {
      await h.tamper.truncateAfter(keep);
      expect(await problem()).toMatchObject({
        code: 'AUDIT_LOG_TRUNCATED',
        seq: keep + 1,
        checkpoint: { kind: 'periodic', count: 10 },
      });
    });

    it('a forged checkpoint signature', async () => {
      const signature = String(await h.tamper.checkpointColumn('periodic', 5, 'signature'));
      const flipped = (signature.startsWith('A') ? 'B' : 'A') + signature.slice(1);
      await h.tamper.setCheckpointColumn('periodic', 5, 'signature', flipped);
      expect(await problem()).toMatchObject({
        code: 'AUDIT_CHECKPOINT_INVALID',
        checkpoint: { kind: 'periodic', count: 5 },
        message: expect.stringContaining('signature does not verify') as unknown,
      });
    });

    it.each([
      ['head_hash', 'a'.repeat(64)],
      ['record_count', 6],
      ['signed_at', '2030-01-01T00:00:00.000Z'],
      ['signature', 'not base64url!'],
      ['algorithm', 'ES384'],
    ] as const)('a checkpoint whose %s was edited', async (column, value) => {
      await h.tamper.setCheckpointColumn('periodic', 10, column, value);
      expect(await problem()).toMatchObject({ code: 'AUDIT_CHECKPOINT_INVALID' });
    });

    it('relabelling a checkpoint as an anchor to pass off deleted records as purged', async () => {
      await h.tamper.setCheckpointColumn('periodic', 5, 'kind', 'anchor');
      for (let seq = 1; seq <= 5; seq++) await h.tamper.deleteRecord(seq);
      expect(await problem()).toMatchObject({
        code: 'AUDIT_CHECKPOINT_INVALID',
        checkpoint: { kind: 'anchor', count: 5 },
      });
    });

    it('a checkpoint inserted by someone without the signing key', async () => {
      const forger = generateTestSigner(h.signer.keyId);
      const statement = {
        kind: 'periodic' as const,
        count: 12,
        head: String(await h.tamper.column(12, 'hash')),
        time: '2025-01-02T00:00:00.000Z',
        keyId: h.signer.keyId,
        algorithm: 'ES256' as const,
      };
      const signature = await forger.sign(checkpointSigningInput(statement));
      await h.client.execute('INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)', [
        statement.kind,
        statement.count,
        statement.head,
        statement.time,
        statement.keyId,
        statement.algorithm,
        encodeSignature(signature),
      ]);
      expect(await problem()).toMatchObject({
        code: 'AUDIT_CHECKPOINT_INVALID',
        checkpoint: { kind: 'periodic', count: 12 },
      });
    });
  });
}
