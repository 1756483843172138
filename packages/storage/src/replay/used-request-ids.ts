import { createHash } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { integerValue } from '../sql/row-values.js';
import type { SqlClient } from '../sql/sql-client.js';

/** What became of an id offered to {@link UsedRequestIds.use}. */
export type RequestIdUse = 'accepted' | 'replayed' | 'full';

/**
 * Ids of signed requests accepted once (an admin request's `jti`, per scope), remembered until the
 * request could no longer be accepted anyway. Kept in the metadata database, so every process and
 * replica using the same database refuses a replay, also after a restart.
 */
export interface UsedRequestIds {
  /**
   * Records `id` as used until `expiresAtMs` unless it is recorded already and not yet expired
   * (`replayed`), or `capacity` live ids of the scope are recorded (`full`: nothing is forgotten
   * early, that would reopen a replay). Expired ids of the scope are deleted on the way.
   */
  use(scope: string, id: string, expiresAtMs: number, nowMs: number, capacity: number): Promise<RequestIdUse>;
}

const MAX_TEXT = 256;

/** {@link UsedRequestIds} over either SQL driver (table `used_request_ids`, schema version 3). */
export class SqlUsedRequestIds implements UsedRequestIds {
  readonly #client: SqlClient;

  constructor(client: SqlClient) {
    this.#client = client;
  }

  use(
    scope: string,
    id: string,
    expiresAtMs: number,
    nowMs: number,
    capacity: number,
  ): Promise<RequestIdUse> {
    if (
      scope.length === 0 ||
      scope.length > MAX_TEXT ||
      id.length === 0 ||
      id.length > MAX_TEXT ||
      !Number.isSafeInteger(expiresAtMs) ||
      !Number.isSafeInteger(nowMs) ||
      !Number.isSafeInteger(capacity) ||
      capacity < 1
    ) {
      throw new TresorError(
        'STORAGE_RECORD_INVALID',
        `a used request id is 1 to ${MAX_TEXT} characters in a scope of as many, with integer times`,
      );
    }
    // Stored as its SHA-256: ids join a key id and a jti with NUL, which PostgreSQL text refuses,
    // and a fixed 64-character column keeps every id the same size. Only membership is ever asked.
    const stored = createHash('sha256').update(id, 'utf8').digest('hex');
    // One serialised transaction (lock), so two replicas offered the same id cannot both accept it;
    // the primary key would refuse the second insert anyway.
    return this.#client.transaction({ mode: 'write', lock: `used-request-ids:${scope}` }, async (tx) => {
      await tx.execute('DELETE FROM used_request_ids WHERE scope = ? AND expires_at <= ?', [scope, nowMs]);
      const [seen] = await tx.query('SELECT 1 AS found FROM used_request_ids WHERE scope = ? AND id = ?', [
        scope,
        stored,
      ]);
      if (seen !== undefined) return 'replayed';
      const [count] = await tx.query('SELECT COUNT(*) AS n FROM used_request_ids WHERE scope = ?', [scope]);
      const live = integerValue(count?.n);
      if (live === undefined) {
        throw new TresorError('STORAGE_UNAVAILABLE', 'the used request ids could not be counted');
      }
      if (live >= capacity) return 'full';
      await tx.execute('INSERT INTO used_request_ids (scope, id, expires_at) VALUES (?, ?, ?)', [
        scope,
        stored,
        expiresAtMs,
      ]);
      return 'accepted';
    });
  }
}
