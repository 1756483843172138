import { integerValue } from '../sql/row-values.js';
import { hashAuditRecordBody, type AuditRecord } from './audit-record.js';
import { parseStoredAuditRow, type StoredAuditRow } from './stored-record.js';

/** The head of the chain: the record count so far and the hash the next record links to. */
export interface ChainHead {
  readonly count: number;
  readonly hash: string;
}

/** Where a walk found the chain broken: the first bad record, and why. */
export interface ChainBreak {
  readonly seq: number;
  readonly reason: string;
}

class Malformed extends Error {}

/**
 * Walks records in sequence order from a trusted head (genesis, or a verified checkpoint) and
 * names the first record that does not continue the chain. Checks, per record: it is the next
 * sequence number (else one was deleted), its contents hash to its stored hash (else it was
 * edited or moved), and its `prev` is the hash of the record before (else one before it was
 * replaced and re-hashed).
 */
export class ChainWalker {
  #head: ChainHead;

  constructor(start: ChainHead) {
    this.#head = start;
  }

  get head(): ChainHead {
    return this.#head;
  }

  /** Accepts the next stored row, or returns the break it shows. */
  accept(row: StoredAuditRow): ChainBreak | { readonly record: AuditRecord } {
    const expected = this.#head.count + 1;
    const seq = integerValue(row.seq);
    if (seq === undefined) {
      return {
        seq: expected,
        reason: `the record after record ${this.#head.count} has a malformed sequence number`,
      };
    }
    if (seq > expected) {
      const gap = seq - 1 === expected ? `record ${expected} is` : `records ${expected} to ${seq - 1} are`;
      return { seq: expected, reason: `${gap} missing (deleted); the next record present is ${seq}` };
    }
    if (seq < expected) {
      return { seq, reason: `record ${seq} is out of sequence after record ${this.#head.count}` };
    }
    let record: AuditRecord;
    try {
      record = parseStoredAuditRow(row, (problem) => {
        throw new Malformed(problem);
      });
    } catch (err) {
      if (!(err instanceof Malformed)) throw err;
      return { seq, reason: `record ${seq} was edited: ${err.message}` };
    }
    if (hashAuditRecordBody(record) !== record.hash) {
      return { seq, reason: `record ${seq} was edited or moved: its contents do not match its hash` };
    }
    if (record.prev !== this.#head.hash) {
      const before = this.#head.count === 0 ? 'the start of the log' : `record ${this.#head.count}`;
      return {
        seq,
        reason: `record ${seq} does not link to ${before}: its prev hash differs (${before} was replaced, or records were reordered)`,
      };
    }
    this.#head = { count: seq, hash: record.hash };
    return { record };
  }
}
