import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { TresorError } from '@tresor/protocol';
import { equalBytes, utf8Decode } from '@tresor/crypto';
import type { SignatureVerifier } from './signatures/signature-verifier.js';
import { webCryptoSignatureVerifier } from './signatures/webcrypto-signature-verifier.js';
import { verifyX509Signature } from './signatures/x509-signature.js';

/**
 * Certificate primitives shared by the SNP, TDX and NVIDIA verifiers. Built on @peculiar/x509 for
 * parsing; signatures are checked through a SignatureVerifier (signatures/). Every function is
 * pure: the verification time is a parameter, nothing touches a network.
 */

x509.cryptoProvider.set(globalThis.crypto);

export type Certificate = x509.X509Certificate;
export type Crl = x509.X509Crl;

const PEM_BEGIN = '-----BEGIN ';

function looksLikePem(bytes: Uint8Array): boolean {
  const head = new TextDecoder().decode(bytes.subarray(0, Math.min(bytes.length, 4096)));
  return head.includes(PEM_BEGIN);
}

/**
 * Parses one DER certificate or any number of concatenated PEM certificates (leaf first, as files
 * ship them). Throws INPUT_MALFORMED when nothing parses, so a wrong file is named, not misread.
 */
export function parseCertificates(input: Uint8Array, what = 'certificate'): Certificate[] {
  try {
    const certs = looksLikePem(input)
      ? x509.PemConverter.decode(utf8Decode(input)).map((der) => new x509.X509Certificate(der))
      : [new x509.X509Certificate(copy(input))];
    if (certs.length === 0) throw new Error('no PEM block');
    certs.forEach(decodeEagerly);
    return certs;
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', `the ${what} is not a PEM or DER X.509 certificate`, { cause });
  }
}

/**
 * @peculiar/x509 decodes some fields on first access; read them here so a malformed certificate fails
 * at parse time with INPUT_MALFORMED rather than with a TypeError deep inside a verifier. Returns
 * what it read; callers want only the decoding (the library keeps the decoded fields).
 */
function decodeEagerly(cert: Certificate): unknown[] {
  return [
    ...cert.extensions.map((ext) => ext.value.byteLength),
    cert.publicKey.algorithm,
    cert.subject,
    cert.issuer,
    cert.serialNumber,
    cert.notBefore,
    cert.notAfter,
    cert.signatureAlgorithm,
  ];
}

/** Parses a DER or PEM certificate revocation list. */
export function parseCrl(input: Uint8Array, what = 'CRL'): Crl {
  try {
    if (looksLikePem(input)) {
      const [der] = x509.PemConverter.decode(utf8Decode(input));
      if (der === undefined) throw new Error('no PEM block');
      return new x509.X509Crl(der);
    }
    return new x509.X509Crl(copy(input));
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', `the ${what} is not a PEM or DER X.509 CRL`, { cause });
  }
}

/**
 * True when `cert`'s signature verifies with `issuer`'s public key, checked by `signatures`
 * (WebCrypto unless another implementation is injected). Never throws.
 */
export function isSignedBy(
  cert: Certificate,
  issuer: Certificate,
  signatures: SignatureVerifier = webCryptoSignatureVerifier,
): Promise<boolean> {
  return verifyX509Signature(cert, issuer, signatures);
}

export type Validity = 'valid' | 'not_yet_valid' | 'expired';

/** Validity of `cert` at `now` (notBefore <= now <= notAfter, RFC 5280 §4.1.2.5). */
export function validityAt(cert: Certificate, now: Date): Validity {
  if (now.getTime() < cert.notBefore.getTime()) return 'not_yet_valid';
  if (now.getTime() > cert.notAfter.getTime()) return 'expired';
  return 'valid';
}

/** Byte-for-byte equality of two certificates (used to pin vendor roots). */
export function sameCertificate(a: Certificate, b: Certificate): boolean {
  return a === b || equalBytes(new Uint8Array(a.rawData), new Uint8Array(b.rawData));
}

/** The raw extnValue bytes of the extension with `oid`, or undefined. */
export function extensionValue(cert: Certificate, oid: string): Uint8Array | undefined {
  const ext = cert.extensions.find((e) => e.type === oid);
  return ext === undefined ? undefined : new Uint8Array(ext.value);
}

/** True when `crl` lists `cert`'s serial number. The caller checks the CRL's own signature and dates. */
export function isRevokedBy(cert: Certificate, crl: Crl): boolean {
  return crl.findRevoked(cert) !== null;
}

/** True when `crl` is signed by `issuer`, checked by `signatures` (WebCrypto by default). Never throws. */
export function isCrlSignedBy(
  crl: Crl,
  issuer: Certificate,
  signatures: SignatureVerifier = webCryptoSignatureVerifier,
): Promise<boolean> {
  return verifyX509Signature(crl, issuer, signatures);
}

/** The CRL's validity at `now`: thisUpdate <= now and (no nextUpdate or now <= nextUpdate). */
export function crlCurrentAt(crl: Crl, now: Date): boolean {
  if (now.getTime() < crl.thisUpdate.getTime()) return false;
  return crl.nextUpdate === undefined || now.getTime() <= crl.nextUpdate.getTime();
}

function copy(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out.buffer;
}
