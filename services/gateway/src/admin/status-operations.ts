import { z } from 'zod';
import { isTresorError, type ErrorCode } from '@tresor/protocol';
import { EnvelopeCipher, type KeyId, type KeyStore, type KeyState } from '@tresor/keystore';
import type { AuditLog, AuditRepository, AuditVerification, StoredAuditRow } from '@tresor/storage';
import type { AdminOperation } from '@tresor/trust';
import { parseAdminInput } from './admin-input.js';

/**
 * The two read-mostly admin operations the console's audit and KYOK panels call. Both are
 * audited (`mutates: true` with a commit): who verified the log or probed the keys, and what they
 * saw, is itself worth a record. Neither answer carries content or key material: the audit view
 * has record metadata (who, what, which target, outcome) and the key view states and error codes.
 */

export interface StatusParts {
  readonly audit: AuditLog;
  /** The same repository the log writes to, read for the times and the newest records. */
  readonly auditRecords: AuditRepository;
  readonly keyStore: KeyStore;
  readonly keys: { readonly tenantKek: KeyId; readonly auditCheckpoint: KeyId };
  readonly now: () => Date;
}

/** The newest records the answer lists: enough for a panel, bounded for the answer size. */
const MAX_RECENT = 50;
const DEFAULT_RECENT = 10;

export interface AuditRecordView {
  readonly seq: number;
  readonly time: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly outcome: string;
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '?');

function recordView(row: StoredAuditRow): AuditRecordView {
  return {
    seq: typeof row.seq === 'number' ? row.seq : -1,
    time: text(row.time),
    actor: `${text(row.actorType)}:${text(row.actorId)}`,
    action: text(row.action),
    target: text(row.target),
    outcome: text(row.outcome),
  };
}

/** First and last record time and the newest `recent` records, in one snapshot. */
async function auditSpan(
  repository: AuditRepository,
  verification: AuditVerification,
  recent: number,
): Promise<{ firstTime: string | null; lastTime: string | null; recent: AuditRecordView[] }> {
  const { firstSeq, lastSeq } = verification;
  if (firstSeq === null || lastSeq === null) return { firstTime: null, lastTime: null, recent: [] };
  return repository.read(async (reader) => {
    const [first] = await reader.records(firstSeq - 1, 1);
    const from = Math.max(firstSeq - 1, lastSeq - Math.max(recent, 1));
    // Only records the verification covered: others may have been appended since (the console asks
    // for keystore/status at the same moment, and that is audited too).
    const tail = (await reader.records(from, Math.max(recent, 1))).filter(
      (row) => typeof row.seq === 'number' && row.seq <= lastSeq,
    );
    const last = tail.at(-1);
    return {
      firstTime: first === undefined ? null : text(first.time),
      lastTime: last === undefined ? null : text(last.time),
      recent: tail
        .slice(Math.max(0, tail.length - recent))
        .map(recordView)
        .reverse(),
    };
  });
}

export type KeyRole = 'tenant-kek' | 'audit-checkpoint';

export interface KeyStatus {
  readonly role: KeyRole;
  readonly id: string;
  /** The keystore's state of the key; `unknown` when the keystore did not answer. */
  readonly state: KeyState | 'unknown';
  readonly reachable: boolean;
  readonly revoked: boolean;
  /** The catalogue code of the refusal, when the key could not be used. */
  readonly code?: ErrorCode;
}

const REVOKED_CODES: readonly string[] = ['KEY_REVOKED', 'KEY_DISABLED', 'KEY_DESTROYED', 'KEY_NOT_FOUND'];

/**
 * One key's status. The KEK is exercised for real — a fresh random data key wrapped and unwrapped
 * again, then zeroed — because a tenant key server (KYOK) decides at each use: its metadata may say
 * enabled while the owner has revoked the grant. The signing key is described only: signing a
 * probe with the audit key would make a signature nobody asked the log for.
 */
async function keyStatus(store: KeyStore, role: KeyRole, id: KeyId): Promise<KeyStatus> {
  let state: KeyState | 'unknown' = 'unknown';
  try {
    state = (await store.describe(id)).state;
    if (state !== 'enabled') return { role, id, state, reachable: true, revoked: true };
    if (role === 'tenant-kek') {
      const wrapped = await EnvelopeCipher.newDataKey(store, id);
      (await store.unwrapKey(wrapped)).dispose();
    }
    return { role, id, state, reachable: true, revoked: false };
  } catch (err) {
    const code: ErrorCode = isTresorError(err) ? err.code : 'KEYSTORE_UNAVAILABLE';
    const revoked = REVOKED_CODES.includes(code);
    return { role, id, state, reachable: revoked || state !== 'unknown', revoked, code };
  }
}

export function statusOperations(p: StatusParts): AdminOperation<unknown>[] {
  const auditVerify: AdminOperation<{ recent: number }> = {
    name: 'audit/verify',
    summary:
      "Verify the gateway's audit chain and checkpoints (what `tresor audit verify` checks); the answer names the first broken record.",
    mutates: true,
    parse: (v) => {
      const input = parseAdminInput(
        z.strictObject({ recent: z.number().int().min(0).max(MAX_RECENT).optional() }).nullable(),
        v ?? null,
        'audit/verify',
      );
      return { recent: input?.recent ?? DEFAULT_RECENT };
    },
    target: () => 'audit-log',
    async run(input, commit) {
      const verification = await p.audit.verify();
      const span = await auditSpan(p.auditRecords, verification, input.recent);
      await commit({
        intact: verification.intact,
        records: verification.records,
        ...(verification.problem === undefined ? {} : { problem: verification.problem.code }),
      });
      return { ...verification, ...span, checkedAt: p.now().toISOString() };
    },
  };

  const keystoreStatus: AdminOperation<null> = {
    name: 'keystore/status',
    summary:
      'Whether the keys the gateway depends on (the tenant KEK, BYOK/KYOK; the audit checkpoint key) are reachable and not revoked. Never key material.',
    mutates: true,
    parse: (v) => {
      parseAdminInput(z.strictObject({}).nullable(), v ?? null, 'keystore/status');
      return null;
    },
    target: () => `keystore:${p.keyStore.backend}`,
    async run(_input, commit) {
      const keys = [
        await keyStatus(p.keyStore, 'tenant-kek', p.keys.tenantKek),
        await keyStatus(p.keyStore, 'audit-checkpoint', p.keys.auditCheckpoint),
      ];
      const reachable = keys.every((k) => k.reachable);
      const revoked = keys.some((k) => k.revoked);
      await commit({ reachable, revoked });
      return { backend: p.keyStore.backend, reachable, revoked, keys, checkedAt: p.now().toISOString() };
    },
  };
  return [auditVerify, keystoreStatus];
}
