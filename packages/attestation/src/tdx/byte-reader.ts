import { TresorError } from '@tresor/protocol';

/**
 * A bounds-checked little-endian cursor over untrusted quote bytes. Every read checks the remaining
 * length first and returns a view (no copy), so a hostile length field can neither read past the
 * input nor make us allocate; the only exception it throws is ATTESTATION_EVIDENCE_MALFORMED.
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset: number;

  constructor(bytes: Uint8Array, offset = 0) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = offset;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  u16(what: string): number {
    this.#need(2, what);
    const value = this.#view.getUint16(this.#offset, true);
    this.#offset += 2;
    return value;
  }

  u32(what: string): number {
    this.#need(4, what);
    const value = this.#view.getUint32(this.#offset, true);
    this.#offset += 4;
    return value;
  }

  /** A view of the next `length` bytes. */
  bytes(length: number, what: string): Uint8Array {
    this.#need(length, what);
    const out = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }

  #need(length: number, what: string): void {
    if (length > this.remaining) {
      throw new TresorError(
        'ATTESTATION_EVIDENCE_MALFORMED',
        `the TDX quote is truncated: ${what} needs ${length} bytes at offset ${this.#offset}, ` +
          `${this.remaining} remain; supply the complete quote`,
      );
    }
  }
}
