import { createHash } from 'node:crypto';
import { canonicalJson, utf8Encode } from '@tresor/crypto';
import {
  checkText,
  MAX_TARGET_LENGTH,
  parseAction,
  parseActor,
  parseDetails,
  parseOutcome,
  type AuditActor,
  type AuditDetails,
  type AuditOutcome,
  type Refuse,
} from './audit-entry.js';

/**
 * One record of the hash-chained audit log. Its hash is
 *
 *   hash = SHA-256( UTF-8( JCS({ v: 1, seq, time, actor, action, target, outcome, details, prev }) ) )
 *
 * with JCS the RFC 8785 canonical JSON, and `prev` the hash of record `seq - 1` (64 zeros for
 * record 1, or the head hash of the anchor checkpoint a purge left). Changing, removing or
 * reordering any record therefore changes every later `prev`, and the signed checkpoints pin
 * the head every N records.
 */
export interface AuditRecordBody {
  /** 1, 2, 3, … without gaps: the number of records ever appended, up to this one. */
  readonly seq: number;
  /** ISO 8601 UTC with milliseconds, from the log's clock at append time. */
  readonly time: string;
  readonly actor: AuditActor;
  readonly action: string;
  readonly target: string;
  readonly outcome: AuditOutcome;
  readonly details: AuditDetails;
  /** Hex SHA-256 of the previous record. */
  readonly prev: string;
}

export interface AuditRecord extends AuditRecordBody {
  /** Hex SHA-256 of this record's canonical encoding. */
  readonly hash: string;
}

export const AUDIT_RECORD_VERSION = 1;
/** The `prev` of record 1 of a log that has never been purged. */
export const GENESIS_HASH = '0'.repeat(64);
/** Bound on a record's canonical details, so one record cannot bloat the log. */
export const MAX_DETAILS_BYTES = 4096;
/** Bound on a record's canonical text, checked before it is parsed. */
export const MAX_RECORD_TEXT_LENGTH = 8192;

const HASH = /^[0-9a-f]{64}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HASH.test(value);
}

/** True for the exact form `Date.prototype.toISOString` writes for years 0000–9999. */
export function isIsoTime(value: unknown): value is string {
  return typeof value === 'string' && ISO_TIME.test(value) && new Date(value).toISOString() === value;
}

export function isSequenceNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

/** The canonical JSON text of a record body: the exact bytes its hash is computed over. */
export function encodeAuditRecordBody(body: AuditRecordBody): string {
  return canonicalJson({
    v: AUDIT_RECORD_VERSION,
    seq: body.seq,
    time: body.time,
    actor: { type: body.actor.type, id: body.actor.id },
    action: body.action,
    target: body.target,
    outcome: body.outcome,
    details: body.details,
    prev: body.prev,
  });
}

export function hashAuditRecordBody(body: AuditRecordBody): string {
  return createHash('sha256')
    .update(utf8Encode(encodeAuditRecordBody(body)))
    .digest('hex');
}

/** The record with its hash. */
export function sealAuditRecord(body: AuditRecordBody): AuditRecord {
  return { ...body, hash: hashAuditRecordBody(body) };
}

/** The canonical JSON text of `details` as stored, refusing details over {@link MAX_DETAILS_BYTES}. */
export function encodeDetails(details: AuditDetails, refuse: Refuse): string {
  const text = canonicalJson(details);
  if (utf8Encode(text).length > MAX_DETAILS_BYTES)
    refuse(`details are longer than ${MAX_DETAILS_BYTES} bytes`);
  return text;
}

/**
 * Parses a record body from untrusted JSON data (the decoded canonical text, or the columns of
 * a stored row): every field checked, `v` must be 1. Does not check the hash chain.
 */
export function parseAuditRecordBody(value: unknown, refuse: Refuse): AuditRecordBody {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    refuse('a record is a JSON object');
  const o = value as Record<string, unknown>;
  const known = ['v', 'seq', 'time', 'actor', 'action', 'target', 'outcome', 'details', 'prev'];
  const unknown = Object.keys(o).find((k) => !known.includes(k));
  if (unknown !== undefined) refuse(`unknown member "${unknown.slice(0, 64)}"`);
  if (o.v !== AUDIT_RECORD_VERSION) refuse(`format version is not ${AUDIT_RECORD_VERSION}`);
  if (!isSequenceNumber(o.seq)) refuse('seq is not a positive safe integer');
  if (!isIsoTime(o.time)) refuse('time is not an ISO 8601 UTC time with milliseconds');
  if (!isHash(o.prev)) refuse('prev is not a lower-case hex SHA-256');
  const details = parseDetails(o.details, refuse);
  encodeDetails(details, refuse);
  return {
    seq: o.seq,
    time: o.time,
    actor: parseActor(o.actor, refuse),
    action: parseAction(o.action, refuse),
    target: checkText(o.target, 'target', MAX_TARGET_LENGTH, refuse),
    outcome: parseOutcome(o.outcome, refuse),
    details,
    prev: o.prev,
  };
}

/** Decodes a record body from its canonical text, refusing any text that is not canonical. */
export function decodeAuditRecordBody(text: string, refuse: Refuse): AuditRecordBody {
  if (text.length > MAX_RECORD_TEXT_LENGTH)
    refuse(`the record text is longer than ${MAX_RECORD_TEXT_LENGTH} characters`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    refuse('the record is not JSON');
  }
  const body = parseAuditRecordBody(value, refuse);
  if (encodeAuditRecordBody(body) !== text) refuse('the record text is not in RFC 8785 canonical form');
  return body;
}
