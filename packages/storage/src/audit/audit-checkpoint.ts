import { base64ToBytes, bytesToBase64Url, canonicalJson, utf8Encode } from '@tresor/crypto';
import type { Refuse } from './audit-entry.js';
import { isHash, isIsoTime } from './audit-record.js';

/**
 * A signed statement "the log held `count` records and record `count` had hash `head`".
 *
 * `periodic` checkpoints are written every N records and/or T seconds; an `anchor` is written by
 * a retention purge just before it deletes records 1..count, and verification of what remains
 * starts from it. The kind is signed, so a periodic checkpoint cannot be relabelled into an
 * anchor to make a deletion look like a purge.
 *
 * Signed bytes: UTF-8(JCS({ type: "tresor.audit.checkpoint", v: 1, kind, count, head, time, kid, alg })),
 * ECDSA (ES256: P-256/SHA-256, ES384: P-384/SHA-384) with the raw r||s signature of RFC 7518 §3.4.
 */
export type CheckpointKind = 'periodic' | 'anchor';
export type CheckpointAlgorithm = 'ES256' | 'ES384';

export interface AuditCheckpointStatement {
  readonly kind: CheckpointKind;
  /** The record count covered: records 1..count (some possibly purged) existed, record `count` last. */
  readonly count: number;
  /** Hash of record `count`. */
  readonly head: string;
  /** ISO 8601 UTC time of signing. */
  readonly time: string;
  /** Key id of the signing key in the keystore. */
  readonly keyId: string;
  readonly algorithm: CheckpointAlgorithm;
}

export interface AuditCheckpoint extends AuditCheckpointStatement {
  /** Raw r||s: 64 bytes for ES256, 96 for ES384. */
  readonly signature: Uint8Array;
}

export const CHECKPOINT_TYPE = 'tresor.audit.checkpoint';
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SIGNATURE_LENGTH: Readonly<Record<CheckpointAlgorithm, number>> = { ES256: 64, ES384: 96 };

export function isCheckpointAlgorithm(value: unknown): value is CheckpointAlgorithm {
  return value === 'ES256' || value === 'ES384';
}

/** The bytes a checkpoint's signature covers. */
export function checkpointSigningInput(statement: AuditCheckpointStatement): Uint8Array {
  return utf8Encode(
    canonicalJson({
      type: CHECKPOINT_TYPE,
      v: 1,
      kind: statement.kind,
      count: statement.count,
      head: statement.head,
      time: statement.time,
      kid: statement.keyId,
      alg: statement.algorithm,
    }),
  );
}

export function encodeSignature(signature: Uint8Array): string {
  return bytesToBase64Url(signature);
}

/** Parses a stored checkpoint (all fields untrusted); the signature arrives as base64url text. */
export function parseCheckpoint(value: Record<string, unknown>, refuse: Refuse): AuditCheckpoint {
  const { kind, count, head, time, keyId, algorithm, signature } = value;
  if (kind !== 'periodic' && kind !== 'anchor') refuse('kind is not periodic or anchor');
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
    refuse('the record count is not a positive integer');
  }
  if (!isHash(head)) refuse('the head is not a hex SHA-256');
  if (!isIsoTime(time)) refuse('the time is not an ISO 8601 UTC time');
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) refuse('the key id is not a key id');
  if (!isCheckpointAlgorithm(algorithm)) refuse('the algorithm is not ES256 or ES384');
  const length = SIGNATURE_LENGTH[algorithm];
  // base64url of n bytes is ceil(4n/3) characters; refuse other text before decoding it.
  if (typeof signature !== 'string' || signature.length !== Math.ceil((length * 4) / 3)) {
    refuse(`the signature is not ${length} bytes of base64url`);
  }
  if (!/^[A-Za-z0-9_-]+$/.test(signature)) refuse('the signature is not base64url');
  const bytes = base64ToBytes(signature);
  if (bytes.length !== length) refuse(`the signature is not ${length} bytes`);
  return { kind, count, head, time, keyId, algorithm, signature: bytes };
}
