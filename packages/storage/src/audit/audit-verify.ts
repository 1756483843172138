import { TresorError } from '@tresor/protocol';
import { integerValue } from '../sql/row-values.js';
import { parseCheckpoint, type AuditCheckpoint } from './audit-checkpoint.js';
import { GENESIS_HASH } from './audit-record.js';
import type { AuditLogReader, AuditRepository, StoredCheckpointRow } from './audit-repository.js';
import { ChainWalker, type ChainHead } from './chain-walker.js';
import type { CheckpointKeys } from './checkpoint-keys.js';

export type AuditProblemCode = 'AUDIT_CHAIN_BROKEN' | 'AUDIT_LOG_TRUNCATED' | 'AUDIT_CHECKPOINT_INVALID';

/** The first thing found wrong. */
export interface AuditProblem {
  readonly code: AuditProblemCode;
  /** The first bad record: deleted, edited, out of order, or the first one missing from the tail. */
  readonly seq: number | null;
  /** The checkpoint involved, when one is. */
  readonly checkpoint?: { readonly kind: string; readonly count: number };
  readonly message: string;
}

/** What `tresor audit verify` reports, as JSON with `--json`. */
export interface AuditVerification {
  readonly intact: boolean;
  /** `genesis`, or the count of the anchor checkpoint the remaining records continue from (after a purge). */
  readonly start: { readonly kind: 'genesis' } | { readonly kind: 'anchor'; readonly count: number };
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  /** Records checked before the walk stopped (all of them when intact). */
  readonly records: number;
  /** Checkpoints whose signatures verified. */
  readonly checkpoints: number;
  /** Signed checkpoints compared with a record still present. */
  readonly checkpointsMatched: number;
  /** Record count of the newest signed checkpoint. */
  readonly newestCheckpoint: number | null;
  /** Records after the newest checkpoint: chained but not yet covered by a signature. */
  readonly unsignedRecords: number;
  readonly problem?: AuditProblem;
}

export interface VerifyOptions {
  /** Records read per query. */
  readonly pageSize?: number;
}

class Found extends Error {
  constructor(readonly problem: AuditProblem) {
    super(problem.message);
  }
}

function checkpointName(checkpoint: { kind: unknown; count: unknown }): string {
  const count = typeof checkpoint.count === 'number' ? String(checkpoint.count) : '?';
  return `${typeof checkpoint.kind === 'string' ? checkpoint.kind.slice(0, 16) : '?'} checkpoint at record ${count}`;
}

function verifiedCheckpoints(rows: readonly StoredCheckpointRow[], keys: CheckpointKeys): AuditCheckpoint[] {
  return rows.map((row) => {
    const refuse = (problem: string): never => {
      throw new Found({
        code: 'AUDIT_CHECKPOINT_INVALID',
        seq: null,
        message: `the ${checkpointName(row)} is malformed: ${problem}`,
      });
    };
    const checkpoint = parseCheckpoint(row, refuse);
    const problem = keys.problemWith(checkpoint);
    if (problem !== undefined) {
      throw new Found({
        code: 'AUDIT_CHECKPOINT_INVALID',
        seq: null,
        checkpoint: { kind: checkpoint.kind, count: checkpoint.count },
        message: `the ${checkpointName(checkpoint)} is not valid: ${problem}`,
      });
    }
    return checkpoint;
  });
}

/**
 * Verifies the whole log in one snapshot:
 *
 * 1. every checkpoint is well formed and signed by a trusted key;
 * 2. the records present start right after the newest anchor below them (or at 1), and each
 *    continues the hash chain (ChainWalker) — naming the first deleted, edited or moved record;
 * 3. every signed checkpoint within the records present matches the record it names, so a
 *    record edited with the chain re-hashed after it is caught at the next checkpoint;
 * 4. no signed checkpoint lies beyond the last record: that would be a truncated tail.
 *
 * What it cannot see: a tail cut back to before the newest surviving checkpoint when the
 * checkpoints after it were deleted too, and edits after the newest checkpoint by someone who
 * re-hashes the chain. Frequent checkpoints (and a copy of the newest one kept elsewhere) bound both.
 */
export function verifyAuditLog(
  repository: AuditRepository,
  keys: CheckpointKeys,
  options: VerifyOptions = {},
): Promise<AuditVerification> {
  return repository.read((reader) => verifyInSnapshot(reader, keys, options.pageSize ?? 1000));
}

async function verifyInSnapshot(
  reader: AuditLogReader,
  keys: CheckpointKeys,
  pageSize: number,
): Promise<AuditVerification> {
  let start: AuditVerification['start'] = { kind: 'genesis' };
  let firstSeq: number | null = null;
  let records = 0;
  let matched = 0;
  let checkpoints: AuditCheckpoint[] = [];
  let walker: ChainWalker | undefined;
  const summary = (problem?: AuditProblem): AuditVerification => {
    const newest = checkpoints.length === 0 ? null : Math.max(...checkpoints.map((c) => c.count));
    const lastSeq = walker !== undefined && records > 0 ? walker.head.count : null;
    return {
      intact: problem === undefined,
      start,
      firstSeq,
      lastSeq,
      records,
      checkpoints: checkpoints.length,
      checkpointsMatched: matched,
      newestCheckpoint: newest,
      unsignedRecords: lastSeq === null ? 0 : Math.max(0, lastSeq - (newest ?? 0)),
      ...(problem === undefined ? {} : { problem }),
    };
  };
  try {
    checkpoints = verifiedCheckpoints(await reader.checkpoints(), keys);
    const atCount = new Map<number, AuditCheckpoint[]>();
    for (const c of checkpoints) atCount.set(c.count, [...(atCount.get(c.count) ?? []), c]);
    const anchors = checkpoints.filter((c) => c.kind === 'anchor').sort((a, b) => b.count - a.count);

    let page = await reader.records(Number.MIN_SAFE_INTEGER, pageSize);
    const firstValue = page[0] === undefined ? undefined : integerValue(page[0].seq);
    firstSeq = firstValue ?? null;
    // Records up to the newest anchor below the first record present were purged under that
    // signed anchor; anything else missing from the front was deleted.
    const anchor = anchors.find((a) => firstValue === undefined || a.count < firstValue);
    let head: ChainHead = { count: 0, hash: GENESIS_HASH };
    if (anchor !== undefined) {
      start = { kind: 'anchor', count: anchor.count };
      head = { count: anchor.count, hash: anchor.head };
    }
    walker = new ChainWalker(head);
    let previousCheckpoint = head.count;
    while (page.length > 0) {
      for (const row of page) {
        const step = walker.accept(row);
        if (!('record' in step))
          throw new Found({ code: 'AUDIT_CHAIN_BROKEN', ...step, message: step.reason });
        records += 1;
        for (const c of atCount.get(step.record.seq) ?? []) {
          if (c.head !== step.record.hash) {
            throw new Found({
              code: 'AUDIT_CHAIN_BROKEN',
              seq: c.count,
              checkpoint: { kind: c.kind, count: c.count },
              message: `record ${c.count} does not match the signed ${checkpointName(c)}: a record in ${previousCheckpoint + 1}..${c.count} was changed and the chain re-hashed after it`,
            });
          }
          matched += 1;
          previousCheckpoint = c.count;
        }
      }
      page = await reader.records(walker.head.count, pageSize);
    }
    const end = walker.head.count;
    const beyond = checkpoints.filter((c) => c.count > end).sort((a, b) => b.count - a.count)[0];
    if (beyond !== undefined) {
      const missing =
        end + 1 === beyond.count ? `record ${beyond.count} is` : `records ${end + 1} to ${beyond.count} are`;
      throw new Found({
        code: 'AUDIT_LOG_TRUNCATED',
        seq: end + 1,
        checkpoint: { kind: beyond.kind, count: beyond.count },
        message: `${missing} missing from the end of the log; the signed ${checkpointName(beyond)} covers them`,
      });
    }
    return summary();
  } catch (err) {
    if (err instanceof Found) return summary(err.problem);
    throw err;
  }
}

/** Throws the problem of a failed verification as its TresorError. */
export function assertAuditLogIntact(verification: AuditVerification): void {
  const problem = verification.problem;
  if (problem !== undefined) {
    throw new TresorError(problem.code, problem.message, {
      details: {
        seq: problem.seq,
        ...(problem.checkpoint === undefined ? {} : { checkpoint: problem.checkpoint }),
      },
    });
  }
}
