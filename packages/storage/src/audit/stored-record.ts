import type { Refuse } from './audit-entry.js';
import {
  isHash,
  MAX_RECORD_TEXT_LENGTH,
  parseAuditRecordBody,
  encodeDetails,
  type AuditRecord,
} from './audit-record.js';

/**
 * An audit row as read from the database, column values mapped to record fields but not yet
 * trusted: `details` is the stored canonical JSON text.
 */
export interface StoredAuditRow {
  readonly seq: unknown;
  readonly time: unknown;
  readonly actorType: unknown;
  readonly actorId: unknown;
  readonly action: unknown;
  readonly target: unknown;
  readonly outcome: unknown;
  readonly details: unknown;
  readonly prev: unknown;
  readonly hash: unknown;
}

/**
 * Parses a stored row into a record with its stored hash (not yet compared with the recomputed
 * one). The details text must be exactly the canonical form: the hash covers the parsed value,
 * so a re-serialised but equal text would otherwise pass unnoticed as an edit.
 */
export function parseStoredAuditRow(row: StoredAuditRow, refuse: Refuse): AuditRecord {
  if (typeof row.details !== 'string' || row.details.length > MAX_RECORD_TEXT_LENGTH) {
    refuse('details are not text of a bounded length');
  }
  let details: unknown;
  try {
    details = JSON.parse(row.details);
  } catch {
    refuse('details are not JSON');
  }
  const body = parseAuditRecordBody(
    {
      v: 1,
      seq: row.seq,
      time: row.time,
      actor: { type: row.actorType, id: row.actorId },
      action: row.action,
      target: row.target,
      outcome: row.outcome,
      details,
      prev: row.prev,
    },
    refuse,
  );
  if (encodeDetails(body.details, refuse) !== row.details) refuse('details are not in canonical form');
  if (!isHash(row.hash)) refuse('the stored hash is not a hex SHA-256');
  return { ...body, hash: row.hash };
}
