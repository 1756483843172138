/**
 * A separate process appending to the audit log, for the "several processes never fork the
 * chain" test: `node --import tsx parallel-appender.ts <target JSON> <worker> <count>`.
 * It never checkpoints (the parent does, afterwards), so its throwaway signer is never used.
 */
import { AuditLog } from '../audit/audit-log.js';
import { SqlAuditRepository } from '../audit/audit-repository.js';
import { openMetadataDatabase, type DatabaseTarget } from '../state-dir.js';
import { generateTestSigner } from './test-signer.js';

const [targetJson, worker, count] = process.argv.slice(2);
const target = JSON.parse(targetJson ?? '') as DatabaseTarget;
const client = await openMetadataDatabase(target);
try {
  const log = new AuditLog(new SqlAuditRepository(client), {
    signer: generateTestSigner(),
    checkpointEvery: Number.MAX_SAFE_INTEGER,
    checkpointIntervalMs: Number.MAX_SAFE_INTEGER,
  });
  for (let n = 0; n < Number(count); n++) {
    await log.append({
      actor: { type: 'workload', id: `spiffe://tresor/worker-${worker ?? '?'}` },
      action: 'test.append',
      target: `worker:${worker ?? '?'}`,
      outcome: 'success',
      details: { n },
    });
  }
} finally {
  await client.close();
}
