import * as asn1js from 'asn1js';
import { bytesToHex } from '@tresor/crypto';
import { TresorError } from '@tresor/protocol';

/**
 * X.501 names of the GPU device certificates, read from their DER encoding. The claims spell a
 * subject the way Python's `cryptography` does (`Name.rfc4514_string()`), which is what the testdata
 * tool wrote into expected.json: RDNs in reverse order (RFC 4514 §2.1), short names only for the
 * attributes RFC 4514 §3 lists, dotted OIDs for the rest (so serialNumber is `2.5.4.5`).
 */

export interface NameAttribute {
  readonly oid: string;
  /** The directory string, or `#` + hex of the BER encoding for values that are not strings (RFC 4514 §2.4). */
  readonly value: string;
  readonly isText: boolean;
}

/** A Name as its RDNs in encoding order, each a set of attributes. */
export type DistinguishedName = readonly (readonly NameAttribute[])[];

/** serialNumber (X.520): NVIDIA puts a device-key-derived id here in the BROM and FMC certificates. */
export const SERIAL_NUMBER_OID = '2.5.4.5';

const SHORT_NAMES: ReadonlyMap<string, string> = new Map([
  ['2.5.4.3', 'CN'],
  ['2.5.4.7', 'L'],
  ['2.5.4.8', 'ST'],
  ['2.5.4.10', 'O'],
  ['2.5.4.11', 'OU'],
  ['2.5.4.6', 'C'],
  ['2.5.4.9', 'STREET'],
  ['0.9.2342.19200300.100.1.25', 'DC'],
  ['0.9.2342.19200300.100.1.1', 'UID'],
]);

/** Decodes a DER Name (RFC 5280 §4.1.2.4). Throws INPUT_MALFORMED when it is not one. */
export function decodeName(der: ArrayBuffer): DistinguishedName {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) {
    throw new TresorError('INPUT_MALFORMED', 'a certificate name is not a DER Name');
  }
  return parsed.result.valueBlock.value.map((rdn) => {
    if (!(rdn instanceof asn1js.Set))
      throw new TresorError('INPUT_MALFORMED', 'a certificate name RDN is not a SET');
    return rdn.valueBlock.value.map(decodeAttribute);
  });
}

function decodeAttribute(atv: asn1js.AsnType): NameAttribute {
  const [type, value] = atv instanceof asn1js.Sequence ? atv.valueBlock.value : [];
  if (!(type instanceof asn1js.ObjectIdentifier) || value === undefined) {
    throw new TresorError('INPUT_MALFORMED', 'a certificate name attribute is not an AttributeTypeAndValue');
  }
  return value instanceof asn1js.BaseStringBlock
    ? { oid: type.getValue(), value: value.getValue(), isText: true }
    : { oid: type.getValue(), value: `#${bytesToHex(new Uint8Array(value.toBER()))}`, isText: false };
}

/** The first value of attribute `oid`, or undefined. */
export function attributeValue(name: DistinguishedName, oid: string): string | undefined {
  for (const rdn of name) {
    const hit = rdn.find((a) => a.oid === oid);
    if (hit !== undefined) return hit.value;
  }
  return undefined;
}

/** The RFC 4514 string form, exactly as Python `cryptography`'s `Name.rfc4514_string()` writes it. */
export function rfc4514String(name: DistinguishedName): string {
  return [...name]
    .reverse()
    .map((rdn) =>
      rdn
        .map((a) => `${SHORT_NAMES.get(a.oid) ?? a.oid}=${a.isText ? escapeValue(a.value) : a.value}`)
        .join('+'),
    )
    .join(',');
}

/** RFC 4514 §2.4 escaping, in the order `cryptography` applies it. */
function escapeValue(value: string): string {
  let out = value.replace(/[\\"+,;<>]/g, (c) => `\\${c}`).replaceAll('\0', '\\00');
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}
