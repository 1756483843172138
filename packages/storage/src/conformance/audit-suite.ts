import { spawn } from 'node:child_process';
import { createHash, verify } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkpointSigningInput } from '../audit/audit-checkpoint.js';
import { GENESIS_HASH, hashAuditRecordBody } from '../audit/audit-record.js';
import { CheckpointKeys } from '../audit/checkpoint-keys.js';
import { ManualScheduler } from './manual-time.js';
import { generateTestSigner } from './test-signer.js';
import { appendSamples, openAuditHarness, sampleEntry, T0, type AuditHarness } from './audit-harness.js';
import type { StorageFixture, TestDatabase } from './storage-fixture.js';

const APPENDER = fileURLToPath(new URL('./parallel-appender.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function runAppender(target: unknown, worker: number, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', APPENDER, JSON.stringify(target), String(worker), String(count)],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`appender ${worker} exited ${String(code)}: ${stderr.slice(0, 2000)}`));
    });
  });
}

async function rows(
  h: AuditHarness,
): Promise<{ seq: number; prev: string; hash: string; details: string }[]> {
  return (await h.client.query('SELECT seq, prev_hash, hash, details FROM audit_records ORDER BY seq')).map(
    (r) => ({
      seq: Number(r.seq),
      prev: String(r.prev_hash),
      hash: String(r.hash),
      details: String(r.details),
    }),
  );
}

async function expectContiguousChain(h: AuditHarness, count: number): Promise<void> {
  const stored = await rows(h);
  expect(stored.map((r) => r.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  stored.forEach((r, i) => {
    expect(r.prev).toBe(i === 0 ? GENESIS_HASH : stored[i - 1]!.hash);
  });
}

export function auditSuite(fixture: StorageFixture): void {
  describe('audit log', () => {
    let db: TestDatabase;
    let h: AuditHarness;
    const extra: AuditHarness[] = [];
    beforeEach(async () => {
      db = await fixture.create();
      h = await openAuditHarness(db);
    });
    afterEach(async () => {
      for (const x of extra.splice(0)) await x.close();
      await h.close();
      await db.dispose();
    });

    it('appends records numbered 1, 2, 3 … each hashing its canonical form and linking to the one before', async () => {
      const first = await h.log.append(sampleEntry(1));
      h.clock.advance(1500);
      const second = await h.log.append({
        ...sampleEntry(2),
        actor: { type: 'workload', id: 'spiffe://tresor/gateway' },
      });
      expect(first).toMatchObject({ seq: 1, time: T0.toISOString(), prev: GENESIS_HASH, outcome: 'success' });
      expect(second).toMatchObject({ seq: 2, time: '2025-01-01T00:00:01.500Z', prev: first.hash });
      const canonical =
        '{"action":"keys.create","actor":{"id":"adm-key-01","type":"admin"},"details":{"backend":"file","labels":["a","b"],"n":1},' +
        `"outcome":"success","prev":"${GENESIS_HASH}","seq":1,"target":"tenant:acme/key:kek-1","time":"2025-01-01T00:00:00.000Z","v":1}`;
      expect(first.hash).toBe(createHash('sha256').update(canonical).digest('hex'));
      expect(hashAuditRecordBody(second)).toBe(second.hash);
      const stored = await rows(h);
      expect(stored).toHaveLength(2);
      expect(stored[0]).toEqual({
        seq: 1,
        prev: GENESIS_HASH,
        hash: first.hash,
        details: '{"backend":"file","labels":["a","b"],"n":1}',
      });
      expect((await h.verify()).intact).toBe(true);
    });

    it('refuses entries carrying content or secrets, or malformed fields, and stores nothing', async () => {
      const refused = [
        { ...sampleEntry(1), details: { prompt: 'tell me a secret' } },
        { ...sampleEntry(1), details: { nested: { clientSecret: 'x' } } },
        { ...sampleEntry(1), details: { Messages: ['hi'] } },
        { ...sampleEntry(1), details: { pem: '-----BEGIN PRIVATE KEY-----\nMIG' } },
        { ...sampleEntry(1), details: { big: 'x'.repeat(1025) } },
        { ...sampleEntry(1), details: { a: { b: { c: { d: { e: 1 } } } } } },
        { ...sampleEntry(1), details: { many: Array.from({ length: 9 }, () => 'y'.repeat(500)) } },
        { ...sampleEntry(1), details: { n: Number.NaN } },
        { ...sampleEntry(1), action: 'Keys Create' },
        { ...sampleEntry(1), actor: { type: 'root', id: 'x' } },
        { ...sampleEntry(1), actor: { type: 'admin', id: 'has space' } },
        { ...sampleEntry(1), target: 'line\nbreak' },
        { ...sampleEntry(1), outcome: 'maybe' },
      ];
      for (const entry of refused) {
        await expect(h.log.append(entry as never)).rejects.toMatchObject({ code: 'STORAGE_RECORD_INVALID' });
      }
      expect(await rows(h)).toEqual([]);
      // A count of prompt tokens is metadata, not content.
      await h.log.append({ ...sampleEntry(1), details: { promptTokens: 12, completionTokens: 40 } });
      expect(await rows(h)).toHaveLength(1);
    });

    it('signs a checkpoint every N records that verifies with the public key over the documented bytes', async () => {
      await appendSamples(h, 11);
      const checkpoints = await h.client.query(
        'SELECT kind, record_count, head_hash, signed_at, key_id, algorithm, signature FROM audit_checkpoints ORDER BY record_count',
      );
      expect(checkpoints.map((c) => [c.kind, Number(c.record_count)])).toEqual([
        ['periodic', 5],
        ['periodic', 10],
      ]);
      const stored = await rows(h);
      const ten = checkpoints[1]!;
      expect(ten.head_hash).toBe(stored[9]!.hash);
      expect(ten.key_id).toBe(h.signer.keyId);
      const statement = {
        kind: 'periodic' as const,
        count: 10,
        head: String(ten.head_hash),
        time: String(ten.signed_at),
        keyId: h.signer.keyId,
        algorithm: 'ES256' as const,
      };
      const signature = Buffer.from(String(ten.signature), 'base64url');
      const publicKey = { key: { ...h.signer.publicJwk }, format: 'jwk' as const };
      expect(
        verify(
          'sha256',
          checkpointSigningInput(statement),
          { ...publicKey, dsaEncoding: 'ieee-p1363' },
          signature,
        ),
      ).toBe(true);
      const result = await h.verify();
      expect(result).toMatchObject({
        intact: true,
        start: { kind: 'genesis' },
        firstSeq: 1,
        lastSeq: 11,
        records: 11,
        checkpoints: 2,
        checkpointsMatched: 2,
        newestCheckpoint: 10,
        unsignedRecords: 1,
      });
    });

    it('signs a checkpoint once the oldest unsigned record is T old, on append or on schedule', async () => {
      const timed = await openAuditHarness(db, { checkpointEvery: 1000, checkpointIntervalMs: 60_000 });
      extra.push(timed);
      await timed.log.append(sampleEntry(1));
      timed.clock.advance(59_000);
      expect(await timed.log.checkpointIfDue()).toBeUndefined();
      timed.clock.advance(1_000);
      const due = await timed.log.checkpointIfDue();
      expect(due).toMatchObject({ kind: 'periodic', count: 1 });
      expect(await timed.log.checkpointIfDue()).toBeUndefined();

      const scheduler = new ManualScheduler();
      const errors: unknown[] = [];
      const cancel = timed.log.scheduleCheckpoints(scheduler, (e) => errors.push(e));
      expect(scheduler.intervals).toEqual([60_000]);
      await timed.log.append(sampleEntry(2));
      await scheduler.tick();
      expect((await timed.verify()).newestCheckpoint).toBe(1);
      timed.clock.advance(61_000);
      await scheduler.tick();
      expect((await timed.verify()).newestCheckpoint).toBe(2);
      cancel();
      expect(scheduler.intervals).toEqual([]);
      expect(errors).toEqual([]);
    });

    it('refuses to sign a checkpoint over records altered since the last one', async () => {
      await appendSamples(h, 7);
      await h.tamper.setColumn(6, 'target', 'tenant:evil');
      await expect(h.log.checkpoint()).rejects.toMatchObject({ code: 'AUDIT_CHAIN_BROKEN' });
      await expect(appendSamples(h, 3)).rejects.toMatchObject({ code: 'AUDIT_CHAIN_BROKEN' });
      const counts = await h.client.query('SELECT record_count FROM audit_checkpoints');
      expect(counts.map((c) => Number(c.record_count))).toEqual([5]);
    });

    it('verifies with a key set from a rotation, and refuses checkpoints of a key it was not given', async () => {
      await appendSamples(h, 5);
      const stranger = generateTestSigner('sig-stranger');
      const strangers = CheckpointKeys.fromJwks([stranger.publicJwk]);
      expect((await h.verify(strangers)).problem).toMatchObject({
        code: 'AUDIT_CHECKPOINT_INVALID',
        checkpoint: { kind: 'periodic', count: 5 },
      });
      const sameIdOtherKey = CheckpointKeys.fromJwks([{ ...stranger.publicJwk, kid: h.signer.keyId }]);
      expect((await h.verify(sameIdOtherKey)).problem?.message).toMatch(/signature does not verify/);
      const rotated = CheckpointKeys.parse(
        JSON.stringify({ keys: [stranger.publicJwk, h.signer.publicJwk] }),
      );
      expect((await h.verify(rotated)).intact).toBe(true);
    });

    it('never forks the chain under concurrent appends from several connections', async () => {
      const second = await openAuditHarness(db, { checkpointEvery: 7 });
      extra.push(second);
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? h : second).log.append(sampleEntry(i))),
      );
      await expectContiguousChain(h, 30);
      await h.log.checkpoint();
      expect(await h.verify()).toMatchObject({ intact: true, records: 30, unsignedRecords: 0 });
    });

    it('never forks the chain when several processes append at the same time', async () => {
      const workers = 4;
      const each = 25;
      await Promise.all(Array.from({ length: workers }, (_, w) => runAppender(db.target, w, each)));
      await expectContiguousChain(h, workers * each);
      const perWorker = (
        await h.client.query(
          'SELECT target, COUNT(*) AS n FROM audit_records GROUP BY target ORDER BY target',
        )
      ).map((r) => [r.target, Number(r.n)]);
      expect(perWorker).toEqual(Array.from({ length: workers }, (_, w) => [`worker:${w}`, each]));
      await h.log.checkpoint();
      expect(await h.verify()).toMatchObject({ intact: true, records: workers * each });
    }, 60_000);
  });
}
