/**
 * Readers for column values. Rows are untrusted input (PostgreSQL returns BIGINT as text; a
 * tampered database holds whatever was written into it), so each reader returns `undefined`
 * for a value of the wrong type and the caller reports it with the code of its context.
 */

/** A safe integer from a number, a bigint, or the decimal text PostgreSQL uses for BIGINT. */
export function integerValue(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : undefined;
  }
  if (typeof value === 'string' && /^-?(0|[1-9][0-9]{0,15})$/.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

export function textValue(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function bytesValue(value: unknown): Uint8Array | undefined {
  return value instanceof Uint8Array ? value : undefined;
}
