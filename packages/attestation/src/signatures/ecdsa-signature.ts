import { DER_INTEGER, DER_SEQUENCE, derChildren, derContent, readDerElement } from './der.js';

/**
 * ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3) in DER, converted to the
 * raw r || s form (IEEE P1363) with each integer left-padded to `size` bytes. Strict, as OpenSSL's
 * verifier is: the whole input is the one SEQUENCE, and each INTEGER is positive and minimally
 * encoded (X.690 §8.3.2: no leading 0x00 unless the next octet has its top bit set). Both
 * implementations of the SignatureVerifier must refuse the same malleable encodings, so a
 * signature is never valid in one and invalid in the other. Undefined when any of it fails.
 */
export function ecdsaDerToP1363(der: Uint8Array, size: number): Uint8Array<ArrayBuffer> | undefined {
  const sequence = readDerElement(der, 0);
  if (sequence?.tag !== DER_SEQUENCE || sequence.end !== der.length) return undefined;
  const integers = derChildren(der, sequence);
  if (integers?.length !== 2) return undefined;
  const out = new Uint8Array(2 * size);
  for (const [i, element] of integers.entries()) {
    if (element.tag !== DER_INTEGER) return undefined;
    const value = unsignedMinimal(derContent(der, element));
    if (value === undefined || value.length > size) return undefined;
    out.set(value, (i + 1) * size - value.length);
  }
  return out;
}

/** The magnitude of a positive, minimally encoded DER INTEGER, or undefined. */
function unsignedMinimal(content: Uint8Array): Uint8Array | undefined {
  const first = content[0];
  if (first === undefined || first >= 0x80) return undefined; // empty or negative
  if (first === 0) {
    const second = content[1];
    // A leading zero is allowed only to keep a value with its top bit set positive.
    if (second === undefined) return content;
    if (second < 0x80) return undefined;
    return content.subarray(1);
  }
  return content;
}
