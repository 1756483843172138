import { AuditLog, type AuditLogOptions } from '../audit/audit-log.js';
import type { AuditEntry } from '../audit/audit-entry.js';
import { SqlAuditRepository } from '../audit/audit-repository.js';
import { verifyAuditLog, type AuditVerification } from '../audit/audit-verify.js';
import { CheckpointKeys, type CheckpointSigner } from '../audit/checkpoint-keys.js';
import type { SqlClient } from '../sql/sql-client.js';
import { openMetadataDatabase } from '../state-dir.js';
import { AuditTamper } from './audit-tamper.js';
import { ManualClock } from './manual-time.js';
import type { TestDatabase } from './storage-fixture.js';
import { generateTestSigner } from './test-signer.js';

export const T0 = new Date('2025-01-01T00:00:00.000Z');

/** One signer for the whole run: key generation is the slow part of a signer. */
const sharedSigner = generateTestSigner();

export interface AuditHarness {
  readonly client: SqlClient;
  readonly repository: SqlAuditRepository;
  readonly log: AuditLog;
  readonly clock: ManualClock;
  readonly signer: CheckpointSigner;
  readonly tamper: AuditTamper;
  verify(keys?: CheckpointKeys): Promise<AuditVerification>;
  close(): Promise<void>;
}

/** An audit log on `db` with a manual clock, checkpointing every 5 records unless told otherwise. */
export async function openAuditHarness(
  db: TestDatabase,
  options: Partial<AuditLogOptions> = {},
): Promise<AuditHarness> {
  const client = await openMetadataDatabase(db.target);
  const clock = new ManualClock(T0);
  const signer = options.signer ?? sharedSigner;
  const repository = new SqlAuditRepository(client);
  const log = new AuditLog(repository, {
    signer,
    clock,
    checkpointEvery: 5,
    checkpointIntervalMs: 3_600_000,
    ...options,
  });
  const keys = CheckpointKeys.fromJwks([signer.publicJwk]);
  return {
    client,
    repository,
    log,
    clock,
    signer,
    tamper: new AuditTamper(client),
    verify: (trusted = keys) => verifyAuditLog(repository, trusted, { pageSize: 4 }),
    close: () => client.close(),
  };
}

export function sampleEntry(n: number): AuditEntry {
  return {
    actor: { type: 'admin', id: 'adm-key-01' },
    action: 'keys.create',
    target: `tenant:acme/key:kek-${n}`,
    outcome: 'success',
    details: { n, backend: 'file', labels: ['a', 'b'] },
  };
}

/** Appends `count` sample records, one minute apart. */
export async function appendSamples(h: AuditHarness, count: number): Promise<void> {
  for (let n = 1; n <= count; n++) {
    await h.log.append(sampleEntry(n));
    h.clock.advance(60_000);
  }
}
