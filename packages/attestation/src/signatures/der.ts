/**
 * A minimal DER reader (ITU-T X.690 §8.1, §10.1) for the one job signature checking needs from
 * X.509: cutting a certificate or CRL into the exact bytes that were signed, the algorithm, and the
 * signature value, without re-encoding anything (a re-encoded TBS need not be the signed bytes).
 * It reads low tag numbers and definite lengths in their minimal form only; anything else is
 * `undefined`, never an exception.
 */

export interface DerElement {
  /** The identifier octet (class, constructed bit, tag number). */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly contentStart: number;
  /** Offset just past the last content octet. */
  readonly end: number;
}

export const DER_SEQUENCE = 0x30;
export const DER_BIT_STRING = 0x03;
export const DER_INTEGER = 0x02;

/** The element starting at `offset`, if it is complete within `bytes`. */
export function readDerElement(bytes: Uint8Array, offset: number): DerElement | undefined {
  const tag = bytes[offset];
  const first = bytes[offset + 1];
  // High tag numbers (low five bits all set) never occur in the structures read here.
  if (tag === undefined || first === undefined || (tag & 0x1f) === 0x1f) return undefined;
  let length = first;
  let contentStart = offset + 2;
  if (first >= 0x80) {
    const count = first & 0x7f;
    // 0x80 is the indefinite form (BER only); more than 4 length octets exceeds any input here.
    if (count === 0 || count > 4) return undefined;
    length = 0;
    for (let i = 0; i < count; i++) {
      const octet = bytes[contentStart + i];
      if (octet === undefined) return undefined;
      length = length * 256 + octet;
    }
    contentStart += count;
    // X.690 §10.1: the long form only for lengths above 127, with no leading zero octet.
    if (length < 0x80 || bytes[offset + 2] === 0) return undefined;
  }
  const end = contentStart + length;
  return end <= bytes.length ? { tag, start: offset, contentStart, end } : undefined;
}

/** The elements that exactly fill `parent`'s content, or undefined when they do not. */
export function derChildren(bytes: Uint8Array, parent: DerElement): DerElement[] | undefined {
  const children: DerElement[] = [];
  let offset = parent.contentStart;
  while (offset < parent.end) {
    const child = readDerElement(bytes, offset);
    if (child === undefined || child.end > parent.end) return undefined;
    children.push(child);
    offset = child.end;
  }
  return children;
}

export function derBytes(bytes: Uint8Array, element: DerElement): Uint8Array {
  return bytes.subarray(element.start, element.end);
}

export function derContent(bytes: Uint8Array, element: DerElement): Uint8Array {
  return bytes.subarray(element.contentStart, element.end);
}
