import { isTresorError, TresorError } from '@tresor/protocol';
import type { AuditLog } from '../audit/audit-log.js';
import { systemClock, type Cancel, type Clock, type Scheduler } from '../clock.js';
import type { UsageRepository } from '../usage/usage-repository.js';

/** How long metadata is kept (the DPA's retention periods); undefined keeps it forever. */
export interface RetentionPolicy {
  readonly auditRetentionMs?: number;
  readonly usageRetentionMs?: number;
  /** How often the purge runs. */
  readonly intervalMs: number;
}

/** What one run did; it is also what the run's own audit record says. */
export interface RetentionRun {
  readonly time: string;
  readonly auditCutoff: string | null;
  readonly usageCutoff: string | null;
  /** Audit records 1..auditPurgedThrough are gone (null: none were old enough). */
  readonly auditPurgedThrough: number | null;
  readonly auditRecordsPurged: number;
  readonly usageRecordsPurged: number;
}

export interface RetentionJobOptions {
  readonly auditLog: AuditLog;
  readonly usage: UsageRepository;
  readonly policy: RetentionPolicy;
  readonly clock?: Clock;
  /** Failures of scheduled runs (a failed run is audited too, and retried at the next interval). */
  readonly onError?: (err: unknown) => void;
}

const ACTOR = { type: 'system', id: 'tresor-retention' } as const;

function checkPeriod(value: number | undefined, name: string): void {
  if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
    throw new TresorError('CONFIG_INVALID', `${name} is a positive number of milliseconds`);
  }
}

/**
 * Purges usage records and audit records older than their retention, and appends its own run to
 * the audit log (`retention.purge`, with what it removed, or with the failure's code), so the
 * deletion of records is itself on the record.
 */
export class RetentionJob {
  readonly #options: RetentionJobOptions;
  readonly #clock: Clock;
  #cancel: Cancel | undefined;

  constructor(options: RetentionJobOptions) {
    checkPeriod(options.policy.auditRetentionMs, 'auditRetentionMs');
    checkPeriod(options.policy.usageRetentionMs, 'usageRetentionMs');
    checkPeriod(options.policy.intervalMs, 'intervalMs');
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** One purge now. */
  async runOnce(): Promise<RetentionRun> {
    const { auditLog, usage, policy } = this.#options;
    const now = this.#clock.now();
    const cutoff = (ms: number | undefined): Date | null =>
      ms === undefined ? null : new Date(now.getTime() - ms);
    const auditCutoff = cutoff(policy.auditRetentionMs);
    const usageCutoff = cutoff(policy.usageRetentionMs);
    const planned = {
      time: now.toISOString(),
      auditCutoff: auditCutoff?.toISOString() ?? null,
      usageCutoff: usageCutoff?.toISOString() ?? null,
    };
    let run: RetentionRun;
    let usageRecordsPurged = 0;
    try {
      usageRecordsPurged = usageCutoff === null ? 0 : await usage.purgeBefore(usageCutoff);
      const audit =
        auditCutoff === null ? { purgedThrough: null, records: 0 } : await auditLog.purgeBefore(auditCutoff);
      run = {
        ...planned,
        auditPurgedThrough: audit.purgedThrough,
        auditRecordsPurged: audit.records,
        usageRecordsPurged,
      };
    } catch (err) {
      const code = isTresorError(err) ? err.code : 'INTERNAL_ERROR';
      // Best effort: when the log itself is what failed, this append fails too, and the original error wins.
      await auditLog
        .append({
          actor: ACTOR,
          action: 'retention.purge',
          target: 'metadata',
          outcome: 'failure',
          details: { ...planned, usageRecordsPurged, code },
        })
        .catch(() => undefined);
      throw err;
    }
    await auditLog.append({
      actor: ACTOR,
      action: 'retention.purge',
      target: 'metadata',
      outcome: 'success',
      details: { ...run },
    });
    return run;
  }

  /** Runs {@link runOnce} every `policy.intervalMs` until {@link stop}. */
  start(scheduler: Scheduler): void {
    if (this.#cancel !== undefined) return;
    this.#cancel = scheduler.every(this.#options.policy.intervalMs, async () => {
      try {
        await this.runOnce();
      } catch (err) {
        this.#options.onError?.(err);
      }
    });
  }

  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }
}
