import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SqlUsageRepository } from '../usage/usage-repository.js';
import { RetentionJob } from '../retention/retention-job.js';
import { ManualScheduler } from './manual-time.js';
import { appendSamples, openAuditHarness, type AuditHarness } from './audit-harness.js';
import type { StorageFixture, TestDatabase } from './storage-fixture.js';
import { openTestKeyStore, tenantKeys, type TestKeyStore } from './tenant-keys.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export function retentionSuite(fixture: StorageFixture): void {
  describe('retention', () => {
    let db: TestDatabase;
    let h: AuditHarness;
    let keyStore: TestKeyStore;
    let usage: SqlUsageRepository;
    let job: RetentionJob;
    beforeAll(async () => {
      keyStore = await openTestKeyStore();
    });
    afterAll(async () => {
      await keyStore.close();
    });
    beforeEach(async () => {
      db = await fixture.create();
      h = await openAuditHarness(db);
      usage = new SqlUsageRepository(h.client, tenantKeys(keyStore.store).ciphers);
      job = new RetentionJob({
        auditLog: h.log,
        usage,
        clock: h.clock,
        policy: { auditRetentionMs: 30 * DAY, usageRetentionMs: 7 * DAY, intervalMs: HOUR },
      });
      // Records 1..8 one hour apart from T0, checkpoint at 5; usage records the same hours.
      for (let n = 1; n <= 8; n++) {
        await usage.record({
          id: `req-${n}`,
          tenant: 'acme',
          apiKeyId: 'key-1',
          model: 'm',
          promptTokens: 1,
          completionTokens: 1,
          latencyMs: 1,
          status: 200,
          time: h.clock.now(),
        });
        await appendSamples(h, 1);
        h.clock.advance(HOUR - 60_000);
      }
    });
    afterEach(async () => {
      job.stop();
      await h.close();
      await db.dispose();
    });

    it('purges what is older than the retention behind a signed anchor, audits the run, and the log still verifies', async () => {
      // Now: T0 + 30 days + 3.5 hours, so audit records made before T0 + 3.5 h (1..4) are due.
      h.clock.advance(30 * DAY + 3.5 * HOUR - 8 * HOUR);
      const run = await job.runOnce();
      expect(run).toEqual({
        time: '2025-01-31T03:30:00.000Z',
        auditCutoff: '2025-01-01T03:30:00.000Z',
        usageCutoff: '2025-01-24T03:30:00.000Z',
        auditPurgedThrough: 4,
        auditRecordsPurged: 4,
        usageRecordsPurged: 8,
      });
      const seqs = (await h.client.query('SELECT seq FROM audit_records ORDER BY seq')).map((r) =>
        Number(r.seq),
      );
      expect(seqs).toEqual([5, 6, 7, 8, 9]);
      const anchors = await h.client.query(
        "SELECT record_count FROM audit_checkpoints WHERE kind = 'anchor'",
      );
      expect(anchors.map((a) => Number(a.record_count))).toEqual([4]);
      const [purge] = await h.client.query(
        'SELECT actor_type, actor_id, action, outcome, details FROM audit_records WHERE seq = 9',
      );
      expect(purge).toMatchObject({
        actor_type: 'system',
        actor_id: 'tresor-retention',
        action: 'retention.purge',
        outcome: 'success',
      });
      expect(JSON.parse(String(purge?.details))).toEqual(run);
      expect(await h.verify()).toMatchObject({
        intact: true,
        start: { kind: 'anchor', count: 4 },
        firstSeq: 5,
        lastSeq: 9,
        records: 5,
      });
      expect(await usage.totals({ tenant: 'acme' })).toMatchObject({ requests: 0 });
    });

    it('keeps verifying across repeated purges down to an empty log, and appends continue from the anchor', async () => {
      h.clock.advance(31 * DAY);
      expect(await job.runOnce()).toMatchObject({ auditPurgedThrough: 8, auditRecordsPurged: 8 });
      expect(await h.verify()).toMatchObject({
        intact: true,
        start: { kind: 'anchor', count: 8 },
        firstSeq: 9,
        lastSeq: 9,
      });
      h.clock.advance(31 * DAY);
      expect(await job.runOnce()).toMatchObject({ auditPurgedThrough: 9, auditRecordsPurged: 1 });
      expect(await h.verify()).toMatchObject({
        intact: true,
        start: { kind: 'anchor', count: 9 },
        firstSeq: 10,
        lastSeq: 10,
      });
      const next = await h.log.append({
        actor: { type: 'admin', id: 'adm' },
        action: 'keys.list',
        target: '',
        outcome: 'success',
      });
      expect(next.seq).toBe(11);
      expect((await h.verify()).intact).toBe(true);
    });

    it('audits a run that had nothing to purge', async () => {
      const run = await job.runOnce();
      expect(run).toMatchObject({ auditPurgedThrough: null, auditRecordsPurged: 0, usageRecordsPurged: 0 });
      expect(
        await h.client.query("SELECT seq FROM audit_records WHERE action = 'retention.purge'"),
      ).toHaveLength(1);
    });

    it('detects the removal of the anchor, or of records past it', async () => {
      h.clock.advance(30 * DAY + 3.5 * HOUR - 8 * HOUR);
      await job.runOnce();
      await h.tamper.deleteCheckpoint('anchor', 4);
      expect((await h.verify()).problem).toMatchObject({ code: 'AUDIT_CHAIN_BROKEN', seq: 1 });
    });

    it('refuses to purge a log that does not verify, keeps the evidence, and audits the failure', async () => {
      await h.tamper.setColumn(2, 'target', 'tenant:covered-up');
      h.clock.advance(31 * DAY);
      await expect(job.runOnce()).rejects.toMatchObject({ code: 'AUDIT_CHAIN_BROKEN' });
      expect(await h.client.query('SELECT seq FROM audit_records WHERE seq <= 8')).toHaveLength(8);
      const [failure] = await h.client.query(
        "SELECT outcome, details FROM audit_records WHERE action = 'retention.purge'",
      );
      expect(failure?.outcome).toBe('failure');
      expect(JSON.parse(String(failure?.details))).toMatchObject({ code: 'AUDIT_CHAIN_BROKEN' });
    });

    it('runs on its schedule until stopped, reporting failures to onError', async () => {
      const scheduler = new ManualScheduler();
      const errors: unknown[] = [];
      const scheduled = new RetentionJob({
        auditLog: h.log,
        usage,
        clock: h.clock,
        policy: { auditRetentionMs: DAY, intervalMs: 6 * HOUR },
        onError: (e) => errors.push(e),
      });
      scheduled.start(scheduler);
      expect(scheduler.intervals).toEqual([6 * HOUR]);
      h.clock.advance(2 * DAY);
      await scheduler.tick();
      expect((await h.verify()).start).toEqual({ kind: 'anchor', count: 8 });
      await h.tamper.setColumn(9, 'outcome', 'failure');
      await scheduler.tick();
      expect(errors).toHaveLength(1);
      scheduled.stop();
      expect(scheduler.intervals).toEqual([]);
    });

    it('refuses a retention period that is not a positive duration', () => {
      expect(
        () =>
          new RetentionJob({ auditLog: h.log, usage, policy: { auditRetentionMs: -1, intervalMs: HOUR } }),
      ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
    });
  });
}
