import { TresorError, type ErrorCode } from '@tresor/protocol';

/**
 * QUIC variable-length integers (RFC 9000 §16), used by Binary HTTP (RFC 9292 §3) and chunked
 * OHTTP for lengths. Values are limited to Number.MAX_SAFE_INTEGER; larger encodings (possible
 * only in the 8-byte form) are refused, which no message within our size limits can need.
 */

export function varintLength(value: number): 1 | 2 | 4 | 8 {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
  if (value < 0x40) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x40000000) return 4;
  return 8;
}

/** Writes `value` in its shortest encoding at `offset`; returns the offset after it. */
export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  const len = varintLength(value);
  if (offset + len > target.length) throw new RangeError('varint does not fit the buffer');
  switch (len) {
    case 1:
      target[offset] = value;
      break;
    case 2:
      target[offset] = 0x40 | (value >>> 8);
      target[offset + 1] = value & 0xff;
      break;
    case 4:
      target[offset] = 0x80 | (value >>> 24);
      target[offset + 1] = (value >>> 16) & 0xff;
      target[offset + 2] = (value >>> 8) & 0xff;
      target[offset + 3] = value & 0xff;
      break;
    case 8: {
      const high = Math.floor(value / 2 ** 32);
      const low = value >>> 0;
      target[offset] = 0xc0 | (high >>> 24);
      target[offset + 1] = (high >>> 16) & 0xff;
      target[offset + 2] = (high >>> 8) & 0xff;
      target[offset + 3] = high & 0xff;
      target[offset + 4] = low >>> 24;
      target[offset + 5] = (low >>> 16) & 0xff;
      target[offset + 6] = (low >>> 8) & 0xff;
      target[offset + 7] = low & 0xff;
      break;
    }
  }
  return offset + len;
}

export function encodeVarint(value: number): Uint8Array {
  const out = new Uint8Array(varintLength(value));
  writeVarint(out, 0, value);
  return out;
}

export interface DecodedVarint {
  readonly value: number;
  /** Offset just after the varint. */
  readonly next: number;
}

/**
 * Reads a varint at `offset`. Returns undefined when the input ends before the varint does
 * (callers that stream need to wait for more bytes); throws `code` for values above 2^53-1.
 */
export function tryReadVarint(
  source: Uint8Array,
  offset: number,
  code: ErrorCode = 'INPUT_MALFORMED',
): DecodedVarint | undefined {
  if (offset >= source.length) return undefined;
  const first = source[offset]!;
  const len = 1 << (first >> 6);
  if (offset + len > source.length) return undefined;
  let value = first & 0x3f;
  for (let i = 1; i < len; i++) {
    value = value * 256 + source[offset + i]!;
  }
  if (!Number.isSafeInteger(value)) {
    throw new TresorError(code, 'length field exceeds the largest supported value');
  }
  return { value, next: offset + len };
}

/** Reads a varint at `offset`, throwing `code` when the input is truncated. */
export function readVarint(
  source: Uint8Array,
  offset: number,
  code: ErrorCode = 'INPUT_MALFORMED',
): DecodedVarint {
  const decoded = tryReadVarint(source, offset, code);
  if (decoded === undefined)
    throw new TresorError(code, `truncated variable-length integer at offset ${offset}`);
  return decoded;
}
