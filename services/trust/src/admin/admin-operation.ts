import { TresorError, isTresorError } from '@tresor/protocol';
import type { AuditDetails, AuditEntry } from '@tresor/storage';
import type { VerifiedAdminRequest } from './admin-request.js';

/** Appends an audit record; the storage package's AuditLog is one. */
export interface AdminAuditLog {
  append(entry: AuditEntry): Promise<unknown>;
}

/**
 * Records the change in the audit log. An operation calls it once its change is decided (for a
 * signed document: signed, not yet served), so a change the log does not hold never takes effect.
 */
export type AdminCommit = (details: AuditDetails) => Promise<void>;

/**
 * One admin operation: `POST /admin/v0/<name>` with a signed request whose `request` member is
 * parsed by `parse`. Operations never answer with a secret: responses carry versions, names and
 * digests only.
 */
export interface AdminOperation<Input> {
  /** Path below /admin/v0/, e.g. `reference-values/put`; the audit action is the same with `.`. */
  readonly name: string;
  /** One line for the OpenAPI document and `--help`. */
  readonly summary: string;
  /** Read-only operations (lists) change nothing and are not audited. */
  readonly mutates: boolean;
  /** Parses the `request` member. @throws TresorError INPUT_MALFORMED */
  parse(request: unknown): Input;
  /** What the change is about, for the audit record, e.g. `reference-values:serving/1.4.0/snp`. */
  target(input: Input): string;
  run(input: Input, commit: AdminCommit): Promise<Readonly<Record<string, unknown>>>;
}

/** Erases an operation's input type so operations of all kinds fit one list. */
export function adminOperation<Input>(operation: AdminOperation<Input>): AdminOperation<unknown> {
  return operation;
}

/** The audit action of an operation: `reference-values/put` → `reference-values.put`. */
export function auditAction(operation: Pick<AdminOperation<unknown>, 'name'>): string {
  return operation.name.replaceAll('/', '.');
}

/**
 * Runs a verified admin request: parses its input, runs the operation, and makes sure the audit
 * log holds the outcome: `success` (written by the operation's commit before the change shows), or
 * `denied` with the refusal's code when the operation refused before committing.
 *
 * @throws TresorError whatever the operation refused with; INTERNAL_ERROR when a changing operation
 *   returned without committing (a bug: its change would be unaudited).
 */
export async function executeAdminOperation(
  operation: AdminOperation<unknown>,
  verified: VerifiedAdminRequest,
  audit: AdminAuditLog,
): Promise<Readonly<Record<string, unknown>>> {
  const action = auditAction(operation);
  const actor = { type: 'admin' as const, id: verified.adminKeyId };
  let target = '';
  // An object, so that what `commit` changes is seen as changeable below.
  const state = { committed: false };
  const commit: AdminCommit = async (details) => {
    if (state.committed)
      throw new TresorError('INTERNAL_ERROR', `admin operation ${operation.name} committed twice`);
    await audit.append({
      actor,
      action,
      target,
      outcome: 'success',
      details: { ...details, jti: verified.jti },
    });
    state.committed = true;
  };
  try {
    const input = operation.parse(verified.request);
    target = operation.target(input);
    const response = await operation.run(input, commit);
    if (operation.mutates && !state.committed) {
      throw new TresorError(
        'INTERNAL_ERROR',
        `admin operation ${operation.name} changed state without an audit record`,
      );
    }
    return response;
  } catch (err) {
    if (operation.mutates && !state.committed) {
      await audit.append({
        actor,
        action,
        target,
        outcome: 'denied',
        details: { reason: isTresorError(err) ? err.code : 'INTERNAL_ERROR', jti: verified.jti },
      });
    }
    throw err;
  }
}

/** Audits a request that was signed by a known admin key but refused before it ran (replayed, expired). */
export async function auditRefusedAdminRequest(
  audit: AdminAuditLog,
  operation: Pick<AdminOperation<unknown>, 'name'>,
  adminKeyId: string,
  code: string,
): Promise<void> {
  await audit.append({
    actor: { type: 'admin', id: adminKeyId },
    action: auditAction(operation),
    target: '',
    outcome: 'denied',
    details: { reason: code },
  });
}
