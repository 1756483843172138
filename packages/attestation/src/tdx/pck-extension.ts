import * as asn1js from 'asn1js';
import { extensionValue, type Certificate } from '../certs.js';

/**
 * The Intel SGX extension of a PCK certificate (Intel "SGX PCK Certificate and Certificate
 * Revocation List Profile Specification", OID 1.2.840.113741.1.13.1): a SEQUENCE of (OID, value)
 * pairs. `.1` PPID, `.2` TCB (sub-OIDs `.2.1`–`.2.16` the CPUSVN components, `.2.17`
 * PCESVN, `.2.18` the CPUSVN bytes), `.3` PCE-ID, `.4` FMSPC. The TCB here is what Intel certified
 * for this platform; TCB info levels are matched against it.
 */

export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';
const PPID = `${SGX_EXTENSION_OID}.1`;
const TCB = `${SGX_EXTENSION_OID}.2`;
const PCE_ID = `${SGX_EXTENSION_OID}.3`;
const FMSPC = `${SGX_EXTENSION_OID}.4`;
const PCESVN_ARC = 17;
const CPUSVN_ARC = 18;
const COMPONENT_COUNT = 16;

export interface PckSgxExtension {
  readonly ppid: Uint8Array;
  readonly pceId: Uint8Array;
  readonly fmspc: Uint8Array;
  readonly pceSvn: number;
  readonly cpuSvn: Uint8Array;
  /** The 16 SGX TCB component SVNs, in order. */
  readonly cpuSvnComponents: readonly number[];
}

/** Reads the SGX extension of `pck`; undefined when it is absent or not in the profile's shape. */
export function readPckSgxExtension(pck: Certificate): PckSgxExtension | undefined {
  let der: Uint8Array | undefined;
  try {
    der = extensionValue(pck, SGX_EXTENSION_OID);
  } catch {
    // Reading the extension list parses every extension; a malformed one makes the certificate unusable.
    return undefined;
  }
  if (der === undefined) return undefined;
  const top = oidValuePairs(decode(der));
  if (top === undefined) return undefined;

  const ppid = octets(top.get(PPID), 16);
  const pceId = octets(top.get(PCE_ID), 2);
  const fmspc = octets(top.get(FMSPC), 6);
  const tcb = oidValuePairs(top.get(TCB));
  if (ppid === undefined || pceId === undefined || fmspc === undefined || tcb === undefined) return undefined;

  const cpuSvnComponents: number[] = [];
  for (let arc = 1; arc <= COMPONENT_COUNT; arc++) {
    const svn = smallInteger(tcb.get(`${TCB}.${arc}`), 0xff);
    if (svn === undefined) return undefined;
    cpuSvnComponents.push(svn);
  }
  const pceSvn = smallInteger(tcb.get(`${TCB}.${PCESVN_ARC}`), 0xffff);
  const cpuSvn = octets(tcb.get(`${TCB}.${CPUSVN_ARC}`), 16);
  if (pceSvn === undefined || cpuSvn === undefined) return undefined;
  return { ppid, pceId, fmspc, pceSvn, cpuSvn, cpuSvnComponents };
}

function decode(der: Uint8Array): asn1js.AsnType | undefined {
  const copy = new Uint8Array(der);
  try {
    const { offset, result } = asn1js.fromBER(copy.buffer);
    return offset === -1 || offset !== copy.length ? undefined : result;
  } catch {
    return undefined;
  }
}

/** A SEQUENCE OF SEQUENCE { OBJECT IDENTIFIER, value } as a map from dotted OID to value. */
function oidValuePairs(node: asn1js.AsnType | undefined): Map<string, asn1js.AsnType> | undefined {
  if (!(node instanceof asn1js.Sequence)) return undefined;
  const out = new Map<string, asn1js.AsnType>();
  for (const pair of node.valueBlock.value) {
    if (!(pair instanceof asn1js.Sequence)) return undefined;
    const [oid, value] = pair.valueBlock.value;
    if (!(oid instanceof asn1js.ObjectIdentifier) || value === undefined) return undefined;
    out.set(oid.getValue(), value);
  }
  return out;
}

function octets(node: asn1js.AsnType | undefined, length: number): Uint8Array | undefined {
  if (!(node instanceof asn1js.OctetString)) return undefined;
  const bytes = new Uint8Array(node.valueBlock.valueHexView);
  return bytes.length === length ? bytes : undefined;
}

function smallInteger(node: asn1js.AsnType | undefined, max: number): number | undefined {
  if (!(node instanceof asn1js.Integer)) return undefined;
  const value = node.toBigInt();
  return value >= 0n && value <= BigInt(max) ? Number(value) : undefined;
}
