import { TresorError } from '@tresor/protocol';
import { integerValue } from '../sql/row-values.js';
import { systemClock, type Cancel, type Clock, type Scheduler } from '../clock.js';
import {
  checkpointSigningInput,
  parseCheckpoint,
  type AuditCheckpoint,
  type CheckpointKind,
} from './audit-checkpoint.js';
import { parseAuditEntry, type AuditEntry } from './audit-entry.js';
import { encodeDetails, GENESIS_HASH, isHash, sealAuditRecord, type AuditRecord } from './audit-record.js';
import type { AuditLogReader, AuditRepository } from './audit-repository.js';
import { assertAuditLogIntact, verifyAuditLog, type AuditVerification } from './audit-verify.js';
import { ChainWalker, type ChainHead } from './chain-walker.js';
import { CheckpointKeys, type CheckpointSigner } from './checkpoint-keys.js';
import { GroupCommit } from './group-commit.js';

export interface AuditLogOptions {
  /** Signs checkpoints and anchors; its public key is what `tresor audit verify` is given. */
  readonly signer: CheckpointSigner;
  readonly clock?: Clock;
  /** A checkpoint once this many records are not yet covered by one. Default 1000. */
  readonly checkpointEvery?: number;
  /** A checkpoint once the oldest uncovered record is this old (checked on append and by {@link AuditLog.scheduleCheckpoints}). Default 60 s. */
  readonly checkpointIntervalMs?: number;
  /** At most this many concurrent appends share one transaction (group commit). Default 256. */
  readonly maxBatchRecords?: number;
}

/** What a purge removed: records 1..purgedThrough (null when nothing was old enough). */
export interface AuditPurge {
  readonly purgedThrough: number | null;
  readonly records: number;
}

const PAGE = 1000;

function invalidCheckpoint(problem: string): never {
  throw new TresorError('AUDIT_CHECKPOINT_INVALID', `the newest audit checkpoint ${problem}`);
}

/**
 * The tamper-evident audit log: appends hash-chained records, signs checkpoints every N records
 * or T seconds, and purges old records behind a signed anchor. Before it signs anything it
 * re-verifies what the signature will vouch for (the records since the last checkpoint, or the
 * whole log before a purge), so it never blesses a chain someone has already altered and never
 * deletes the evidence of tampering.
 */
export class AuditLog {
  readonly #repository: AuditRepository;
  readonly #signer: CheckpointSigner;
  readonly #keys: CheckpointKeys;
  readonly #clock: Clock;
  readonly #every: number;
  readonly #intervalMs: number;
  readonly #appends: GroupCommit<AuditEntry, AuditRecord>;
  /**
   * What this log last learnt of checkpoint coverage: the record count covered by the newest
   * checkpoint (a lower bound: it only grows) and, when known, the oldest record after it.
   */
  #coverage: { covered: number; oldestUncovered: { seq: number; time: number } | undefined } | undefined;

  constructor(repository: AuditRepository, options: AuditLogOptions) {
    const every = options.checkpointEvery ?? 1000;
    const intervalMs = options.checkpointIntervalMs ?? 60_000;
    const maxBatch = options.maxBatchRecords ?? 256;
    if (
      !Number.isSafeInteger(every) ||
      every < 1 ||
      !Number.isFinite(intervalMs) ||
      intervalMs <= 0 ||
      !Number.isSafeInteger(maxBatch) ||
      maxBatch < 1
    ) {
      throw new TresorError(
        'CONFIG_INVALID',
        'checkpointEvery and maxBatchRecords are positive integers, checkpointIntervalMs a positive number',
      );
    }
    this.#repository = repository;
    this.#signer = options.signer;
    this.#keys = CheckpointKeys.fromJwks([{ ...options.signer.publicJwk, kid: options.signer.keyId }]);
    this.#clock = options.clock ?? systemClock;
    this.#every = every;
    this.#intervalMs = intervalMs;
    this.#appends = new GroupCommit((entries) => this.#appendBatch(entries), maxBatch);
  }

  /**
   * Appends one record and, when due, a checkpoint. Concurrent appends are committed together
   * (group commit, group-commit.ts): this resolves once the transaction holding the record has
   * committed, so the record is durable when it does. If the checkpoint then fails (keystore
   * unreachable) the error is thrown and the next append or scheduled run retries it.
   *
   * @throws TresorError STORAGE_RECORD_INVALID for an entry with content- or secret-named details,
   *   malformed fields, or details over 4 KiB (checked before it joins a batch, so it never fails
   *   the records committed with it).
   */
  async append(entry: AuditEntry): Promise<AuditRecord> {
    const refuse = (problem: string): never => {
      throw new TresorError('STORAGE_RECORD_INVALID', `audit entry: ${problem}`);
    };
    const checked = parseAuditEntry(entry, refuse);
    encodeDetails(checked.details ?? {}, refuse);
    return this.#appends.submit(checked);
  }

  async #appendBatch(entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
    // The time is read under the append lock, so records from several writers are in time order
    // as far as their clocks agree.
    const records = await this.#repository.append(
      entries.map(
        (checked) =>
          (head: ChainHead): AuditRecord =>
            sealAuditRecord({
              seq: head.count + 1,
              time: this.#now(),
              actor: checked.actor,
              action: checked.action,
              target: checked.target,
              outcome: checked.outcome,
              details: checked.details ?? {},
              prev: head.hash,
            }),
      ),
    );
    if (this.#checkpointMayBeDue(records)) await this.checkpointIfDue();
    return records;
  }

  /**
   * Whether a batch just appended may have made a checkpoint due, decided from what this log
   * last read (no database round trip) and erring towards "maybe": the count covered by the
   * newest checkpoint only grows (so a remembered one is a lower bound), and the oldest uncovered
   * record is the one after it, whose time is known when it was read or appended here. When that
   * record was appended by another writer in between, or nothing was read yet, the database
   * decides (checkpointIfDue).
   */
  #checkpointMayBeDue(records: readonly AuditRecord[]): boolean {
    const known = this.#coverage;
    const first = records[0];
    const last = records[records.length - 1];
    if (known === undefined || first === undefined || last === undefined) return true;
    let oldest = known.oldestUncovered;
    if (oldest === undefined) {
      if (first.seq !== known.covered + 1) return true;
      oldest = { seq: first.seq, time: Date.parse(first.time) };
      this.#coverage = { covered: known.covered, oldestUncovered: oldest };
    }
    return (
      last.seq - known.covered >= this.#every ||
      Number.isNaN(oldest.time) ||
      this.#clock.now().getTime() - oldest.time >= this.#intervalMs
    );
  }

  /** Signs a checkpoint when N records or T seconds have gone uncovered; returns it, if one was made. */
  async checkpointIfDue(): Promise<AuditCheckpoint | undefined> {
    const due = await this.#repository.read(async (reader) => {
      const head = await reader.head();
      const latest = await reader.latestCheckpoint();
      const covered = typeof latest?.count === 'number' ? latest.count : 0;
      if (head.count <= covered) {
        this.#coverage = { covered, oldestUncovered: undefined };
        return false;
      }
      const [oldest] = await reader.records(covered, 1);
      const since = typeof oldest?.time === 'string' ? Date.parse(oldest.time) : Number.NaN;
      this.#coverage =
        oldest?.seq === covered + 1 && !Number.isNaN(since)
          ? { covered, oldestUncovered: { seq: covered + 1, time: since } }
          : undefined;
      if (head.count - covered >= this.#every) return true;
      return Number.isNaN(since) || this.#clock.now().getTime() - since >= this.#intervalMs;
    });
    return due ? this.checkpoint() : undefined;
  }

  /**
   * Signs a checkpoint over the current head, after verifying the records since the newest
   * checkpoint (and that checkpoint's signature). Returns undefined when the head is covered.
   *
   * @throws TresorError AUDIT_CHAIN_BROKEN / AUDIT_LOG_TRUNCATED / AUDIT_CHECKPOINT_INVALID
   *   when the records it would vouch for do not verify: nothing is signed then.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    const head = await this.#repository.read((reader) => this.#verifiedUncoveredHead(reader));
    if (head === undefined) return undefined;
    const checkpoint = await this.#sign('periodic', head);
    await this.#repository.addCheckpoint(checkpoint);
    // Read again by the next check: appends may have raced with this one.
    this.#coverage = undefined;
    return checkpoint;
  }

  /** Verifies the whole log with this log's checkpoint key. */
  verify(): Promise<AuditVerification> {
    return verifyAuditLog(this.#repository, this.#keys);
  }

  /**
   * Deletes the oldest records, those made before `cutoff` (a prefix of the log, so no gap is
   * ever left), behind a signed anchor "records 1..N ended with hash H" from which verification
   * of what remains starts. Verifies the whole log first and refuses to purge a log that does
   * not verify: that would delete the evidence.
   */
  async purgeBefore(cutoff: Date): Promise<AuditPurge> {
    assertAuditLogIntact(await this.verify());
    const through = await this.#repository.read(async (reader) => {
      const head = await reader.head();
      const firstKept = await reader.firstSeqAtOrAfter(cutoff.toISOString());
      const last = (firstKept ?? head.count + 1) - 1;
      if (last < 1) return undefined;
      // Absent when records up to `last` are gone already (purged before): nothing to do.
      const [record] = await reader.records(last - 1, 1);
      if (record === undefined || integerValue(record.seq) !== last || !isHash(record.hash)) return undefined;
      return { count: last, hash: record.hash };
    });
    if (through === undefined) return { purgedThrough: null, records: 0 };
    const anchor = await this.#sign('anchor', through);
    const records = await this.#repository.purgeThrough(anchor);
    return { purgedThrough: through.count, records };
  }

  /** Checks every `intervalMs` whether a checkpoint is due, so a quiet log is still signed within T. */
  scheduleCheckpoints(scheduler: Scheduler, onError: (err: unknown) => void): Cancel {
    return scheduler.every(this.#intervalMs, async () => {
      try {
        await this.checkpointIfDue();
      } catch (err) {
        onError(err);
      }
    });
  }

  async #verifiedUncoveredHead(reader: AuditLogReader): Promise<ChainHead | undefined> {
    const head = await reader.head();
    const latestRow = await reader.latestCheckpoint();
    let base: ChainHead = { count: 0, hash: GENESIS_HASH };
    if (latestRow !== undefined) {
      const latest = parseCheckpoint(latestRow, (problem) => invalidCheckpoint(`is malformed: ${problem}`));
      const problem = this.#keys.problemWith(latest);
      if (problem !== undefined) invalidCheckpoint(`is not valid: ${problem}`);
      base = { count: latest.count, hash: latest.head };
    }
    if (head.count < base.count) {
      throw new TresorError(
        'AUDIT_LOG_TRUNCATED',
        `records ${head.count + 1} to ${base.count} are missing; the newest checkpoint covers them`,
      );
    }
    const walker = new ChainWalker(base);
    while (walker.head.count < head.count) {
      const page = await reader.records(walker.head.count, PAGE);
      if (page.length === 0) break;
      for (const row of page) {
        const step = walker.accept(row);
        if (!('record' in step))
          throw new TresorError('AUDIT_CHAIN_BROKEN', step.reason, { details: { seq: step.seq } });
      }
    }
    if (walker.head.count !== head.count || walker.head.hash !== head.hash) {
      throw new TresorError(
        'AUDIT_CHAIN_BROKEN',
        `record ${head.count} does not continue the verified chain`,
      );
    }
    return head.count > base.count ? head : undefined;
  }

  async #sign(kind: CheckpointKind, head: ChainHead): Promise<AuditCheckpoint> {
    const statement = {
      kind,
      count: head.count,
      head: head.hash,
      time: this.#now(),
      keyId: this.#signer.keyId,
      algorithm: this.#signer.algorithm,
    };
    const signature = await this.#signer.sign(checkpointSigningInput(statement));
    return { ...statement, signature };
  }

  #now(): string {
    const now = this.#clock.now();
    const year = now.getUTCFullYear();
    if (Number.isNaN(now.getTime()) || year < 0 || year > 9999) {
      throw new TresorError('INTERNAL_ERROR', 'the clock gave a time outside the years 0000 to 9999');
    }
    return now.toISOString();
  }
}
