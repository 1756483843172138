import 'reflect-metadata';
import * as asn1js from 'asn1js';
import * as x509 from '@peculiar/x509';
import { equalBytes } from '@tresor/crypto';
import { isSignedBy, validityAt, type Certificate } from '../certs.js';
import type { SignatureVerifier } from '../signatures/index.js';
import { failed, PASSED, type CheckOutcome } from './check-outcome.js';
import { decodeName, rfc4514String, SERIAL_NUMBER_OID, attributeValue } from './distinguished-name.js';
import { certificateSha256, isNvidiaDeviceIdentityCa, nvidiaDeviceIdentityCa } from './device-root.js';

/**
 * Checks of a GPU device certificate chain, leaf first: GH100 FMC leaf (signs the SPDM responses) →
 * GH100 BROM (the chip's device identity) → GH100 Provisioner ICA → GH100 Identity → NVIDIA Device
 * Identity CA. Each function returns a CheckOutcome for the verifier's CheckLog; none throws.
 */

/** TCG DICE extension in the FMC leaf carrying the firmware id the leaf key was derived for. */
const TCG_DICE_FWID_OID = '2.23.133.5.4.1';

/**
 * RFC 5280 §6.1 in the small: each certificate names the next as issuer and verifies with its key,
 * every issuer is a CA allowed to sign certificates (§4.2.1.9 basicConstraints incl. pathLen,
 * §4.2.1.3 keyCertSign), and the leaf may sign (digitalSignature).
 */
export async function checkChainSignatures(
  chain: readonly Certificate[],
  signatures: SignatureVerifier,
): Promise<CheckOutcome> {
  const leaf = chain[0];
  if (leaf === undefined) return chainInvalid('the device certificate chain is empty');
  if (!hasKeyUsage(leaf, x509.KeyUsageFlags.digitalSignature)) {
    return chainInvalid(`${describe(leaf)} may not sign (keyUsage lacks digitalSignature)`);
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1]!;
    if (!sameName(cert.issuerName, issuer.subjectName)) {
      return chainInvalid(`${describe(cert)} is not issued by the next certificate, ${describe(issuer)}`);
    }
    const constraints = issuer.getExtension(x509.BasicConstraintsExtension);
    if (constraints?.ca !== true || !hasKeyUsage(issuer, x509.KeyUsageFlags.keyCertSign)) {
      return chainInvalid(`${describe(issuer)} is not a CA allowed to sign certificates`);
    }
    // pathLen counts the intermediate CA certificates below the issuer (the leaf is not one).
    if (constraints.pathLength !== undefined && i > constraints.pathLength) {
      return chainInvalid(
        `${describe(issuer)} allows ${constraints.pathLength} CAs below it, the chain has ${i}`,
      );
    }
    if (!(await isSignedBy(cert, issuer, signatures))) {
      return chainInvalid(
        `the signature of ${describe(cert)} does not verify with ${describe(issuer)}'s key`,
      );
    }
  }
  return PASSED;
}

/**
 * The chain must end in the pinned NVIDIA Device Identity CA, either by carrying it (byte for byte)
 * or by ending in a certificate it signed. A root supplied by the caller must itself be the pinned
 * one: configuration may restate the trust anchor, never replace it.
 */
export async function checkAnchoredToDeviceRoot(
  chain: readonly Certificate[],
  suppliedRoot: Certificate | undefined,
  signatures: SignatureVerifier,
): Promise<CheckOutcome> {
  const root = nvidiaDeviceIdentityCa();
  if (suppliedRoot !== undefined && !isNvidiaDeviceIdentityCa(suppliedRoot)) {
    return untrusted(
      `the supplied device root ${describe(suppliedRoot)} (SHA-256 ${certificateSha256(suppliedRoot)}) ` +
        'is not the pinned NVIDIA Device Identity CA',
    );
  }
  const top = chain.at(-1);
  if (top === undefined) return untrusted('the device certificate chain is empty');
  if (isNvidiaDeviceIdentityCa(top)) return PASSED;
  if (sameName(top.issuerName, root.subjectName) && (await isSignedBy(top, root, signatures))) return PASSED;
  return untrusted(
    `the chain ends in ${describe(top)}, which is not anchored to the NVIDIA Device Identity CA`,
  );
}

/** Every certificate of the chain, and the pinned root, is valid at `now` (RFC 5280 §4.1.2.5). */
export function checkChainValidAt(chain: readonly Certificate[], now: Date): CheckOutcome {
  for (const cert of [...chain, nvidiaDeviceIdentityCa()]) {
    const validity = validityAt(cert, now);
    if (validity === 'not_yet_valid') {
      return failed(
        'ATTESTATION_CERT_NOT_YET_VALID',
        `${describe(cert)} is valid only from ${cert.notBefore.toISOString()}; checked at ${now.toISOString()}`,
      );
    }
    if (validity === 'expired') {
      return failed(
        'ATTESTATION_CERT_EXPIRED',
        `${describe(cert)} expired at ${cert.notAfter.toISOString()}; checked at ${now.toISOString()}`,
      );
    }
  }
  return PASSED;
}

/**
 * The FMC leaf key is derived (DICE) for one firmware image, and the leaf certificate names that
 * image's digest. The report's own FWID must be the same, or the report and the key disagree about
 * which firmware is running.
 */
export function checkFwidMatchesLeaf(
  leaf: Certificate | undefined,
  reportFwid: Uint8Array | undefined,
): CheckOutcome {
  if (reportFwid === undefined) return tcbMismatch('the GPU evidence carries no FWID opaque field');
  const certFwid = leaf === undefined ? undefined : leafFwid(leaf);
  if (certFwid === undefined) return tcbMismatch('the leaf certificate carries no TCG DICE FWID extension');
  return equalBytes(certFwid, reportFwid)
    ? PASSED
    : tcbMismatch('the FWID in the evidence differs from the FWID the leaf certificate was issued for');
}

/**
 * The FWID digest from the leaf's 2.23.133.5.4.1 extension. NVIDIA encodes it as
 * SEQUENCE { INTEGER version, SubjectPublicKeyInfo, SEQUENCE { hashAlg OID, fwid OCTET STRING } }.
 */
export function leafFwid(leaf: Certificate): Uint8Array | undefined {
  const extension = leaf.getExtension(TCG_DICE_FWID_OID);
  if (extension === null) return undefined;
  const parsed = asn1js.fromBER(extension.value);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return undefined;
  const fwid = parsed.result.valueBlock.value.at(-1);
  if (!(fwid instanceof asn1js.Sequence)) return undefined;
  const [hashAlgorithm, digest] = fwid.valueBlock.value;
  if (!(hashAlgorithm instanceof asn1js.ObjectIdentifier) || !(digest instanceof asn1js.OctetString))
    return undefined;
  return new Uint8Array(digest.valueBlock.valueHexView);
}

/**
 * The chip's stable identity: the serialNumber attribute of the leaf's issuer, i.e. of the BROM
 * device-identity certificate NVIDIA provisioned for this chip (lowercase hex). The FMC leaf's own
 * serialNumber names the FMC key, which DICE derives per firmware (the leaf's FWID extension says
 * which), so it cannot key a hardware inventory across driver or VBIOS updates.
 */
export function deviceIdentity(leaf: Certificate | undefined): string | undefined {
  if (leaf === undefined) return undefined;
  return attributeValue(decodeName(leaf.issuerName.toArrayBuffer()), SERIAL_NUMBER_OID)?.toLowerCase();
}

/** The subject as the claims spell it (Python `cryptography` RFC 4514 form). */
export function subjectString(cert: Certificate): string {
  return rfc4514String(decodeName(cert.subjectName.toArrayBuffer()));
}

function describe(cert: Certificate): string {
  return `certificate "${subjectString(cert)}"`;
}

function sameName(a: x509.Name, b: x509.Name): boolean {
  return equalBytes(new Uint8Array(a.toArrayBuffer()), new Uint8Array(b.toArrayBuffer()));
}

/** RFC 5280 §4.2.1.3: without a keyUsage extension every usage is allowed. */
function hasKeyUsage(cert: Certificate, usage: x509.KeyUsageFlags): boolean {
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
  return keyUsage === null || (keyUsage.usages & usage) !== 0;
}

function chainInvalid(detail: string): CheckOutcome {
  return failed('ATTESTATION_CERT_CHAIN_INVALID', detail);
}

function untrusted(detail: string): CheckOutcome {
  return failed('ATTESTATION_ROOT_UNTRUSTED', detail);
}

function tcbMismatch(detail: string): CheckOutcome {
  return failed('ATTESTATION_TCB_MISMATCH', detail);
}
