import { TresorError } from '@tresor/protocol';

/**
 * A bounds-checked little-endian reader over untrusted evidence bytes. Every read first checks that
 * the bytes are there, so a length field larger than the remaining input is refused before anything
 * is sliced, and the only error that can escape is ATTESTATION_EVIDENCE_MALFORMED naming the field.
 */
export class LittleEndianReader {
  readonly #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  u8(field: string): number {
    return this.bytes(1, field)[0]!;
  }

  u16(field: string): number {
    const b = this.bytes(2, field);
    return b[0]! | (b[1]! << 8);
  }

  u24(field: string): number {
    const b = this.bytes(3, field);
    return b[0]! | (b[1]! << 8) | (b[2]! << 16);
  }

  /** A view (no copy) of the next `length` bytes. */
  bytes(length: number, field: string): Uint8Array {
    if (length > this.remaining) {
      throw new TresorError(
        'ATTESTATION_EVIDENCE_MALFORMED',
        `GPU evidence is truncated: ${field} needs ${length} bytes at offset ${this.#offset}, ${this.remaining} left`,
        { details: { field, offset: this.#offset, needed: length, remaining: this.remaining } },
      );
    }
    const view = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return view;
  }
}

/** Throws ATTESTATION_EVIDENCE_MALFORMED with `message` unless `condition` holds. */
export function requireEvidence(condition: boolean, message: string): asserts condition {
  if (!condition) throw new TresorError('ATTESTATION_EVIDENCE_MALFORMED', message);
}
