import { equalBytes } from '@tresor/crypto';
import type { Certificate, Crl } from '../certs.js';
import { DER_BIT_STRING, DER_SEQUENCE, derBytes, derChildren, derContent, readDerElement } from './der.js';
import type {
  PublicKeyAlgorithm,
  SignatureAlgorithm,
  SignatureHash,
  SignatureVerifier,
} from './signature-verifier.js';

/**
 * Signature checks of X.509 certificates (RFC 5280 §4.1.1.3) and CRLs (§5.1.1.3) through a
 * SignatureVerifier: the signature value is verified over the exact DER bytes of the TBS part as
 * received, with the issuer's SubjectPublicKeyInfo. The algorithm inside the TBS part must be the
 * one outside it (§4.1.1.2, §5.1.1.2), byte for byte, so the signed bytes say how they were signed.
 */

interface SignedParts {
  readonly tbs: Uint8Array;
  /** AlgorithmIdentifier of the outer structure. */
  readonly algorithm: Uint8Array;
  /** AlgorithmIdentifier inside the TBS part (`signature` in TBSCertificate / TBSCertList). */
  readonly tbsAlgorithm: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * Certificate and CertificateList are both SEQUENCE { tbs SEQUENCE, signatureAlgorithm, BIT STRING }.
 * The first SEQUENCE inside the TBS part is its algorithm: the version ([0] in a certificate, an
 * INTEGER in a CRL) and a certificate's serial number are not SEQUENCEs.
 */
export function signedParts(der: Uint8Array): SignedParts | undefined {
  const outer = readDerElement(der, 0);
  if (outer?.tag !== DER_SEQUENCE || outer.end !== der.length) return undefined;
  const [tbs, algorithm, value, ...rest] = derChildren(der, outer) ?? [];
  if (tbs?.tag !== DER_SEQUENCE || algorithm?.tag !== DER_SEQUENCE || value?.tag !== DER_BIT_STRING) {
    return undefined;
  }
  if (rest.length > 0) return undefined;
  const tbsAlgorithm = derChildren(der, tbs)?.find((child) => child.tag === DER_SEQUENCE);
  const bits = derContent(der, value);
  // The signature is a whole number of octets: the BIT STRING's unused-bits octet is 0 (§4.1.1.3).
  if (tbsAlgorithm === undefined || bits[0] !== 0) return undefined;
  return {
    tbs: derBytes(der, tbs),
    algorithm: derBytes(der, algorithm),
    tbsAlgorithm: derBytes(der, tbsAlgorithm),
    signature: bits.subarray(1),
  };
}

/**
 * True when `signed` (a certificate or CRL) verifies under `issuer`'s public key. Supports what the
 * TEE vendors sign with: ecdsa-with-SHA256/384/512 (RFC 5758 §3.2) and RSASSA-PSS (RFC 4055 §3.1).
 * Never throws: anything unsupported or unreadable is `false`.
 */
export async function verifyX509Signature(
  signed: Certificate | Crl,
  issuer: Certificate,
  signatures: SignatureVerifier,
): Promise<boolean> {
  try {
    const parts = signedParts(new Uint8Array(signed.rawData));
    if (parts === undefined || !equalBytes(parts.algorithm, parts.tbsAlgorithm)) return false;
    const algorithm = signatureAlgorithmOf(signed);
    const keyAlgorithm = algorithm === undefined ? undefined : publicKeyAlgorithmOf(issuer, algorithm);
    if (algorithm === undefined || keyAlgorithm === undefined) return false;
    const key = await signatures.importPublicKey(new Uint8Array(issuer.publicKey.rawData), keyAlgorithm);
    return key !== undefined && (await signatures.verify(key, algorithm, parts.signature, parts.tbs));
  } catch {
    // @peculiar/x509 decodes fields lazily and throws on malformed ones: not a valid signature.
    return false;
  }
}

const HASHES: readonly string[] = ['SHA-256', 'SHA-384', 'SHA-512'] satisfies SignatureHash[];

function isSignatureHash(value: unknown): value is SignatureHash {
  return typeof value === 'string' && HASHES.includes(value);
}

/** The signature algorithm as @peculiar/x509 reads it from the AlgorithmIdentifier (incl. PSS parameters). */
function signatureAlgorithmOf(signed: Certificate | Crl): SignatureAlgorithm | undefined {
  const web = signed.signatureAlgorithm as { name?: unknown; hash?: unknown; saltLength?: unknown };
  const hash =
    typeof web.hash === 'object' && web.hash !== null ? (web.hash as { name?: unknown }).name : web.hash;
  if (!isSignatureHash(hash)) return undefined;
  if (web.name === 'ECDSA') return { name: 'ECDSA', hash, encoding: 'der' };
  const salt = web.saltLength;
  if (web.name === 'RSA-PSS' && typeof salt === 'number' && Number.isInteger(salt) && salt >= 0) {
    return { name: 'RSA-PSS', hash, saltLength: salt };
  }
  return undefined;
}

/** The issuer key as the signature needs it: an EC key on P-256/P-384, or an RSA key for PSS. */
function publicKeyAlgorithmOf(
  issuer: Certificate,
  signature: SignatureAlgorithm,
): PublicKeyAlgorithm | undefined {
  const key = issuer.publicKey.algorithm as { name?: unknown; namedCurve?: unknown };
  if (signature.name === 'ECDSA') {
    if (key.name !== 'ECDSA') return undefined;
    return key.namedCurve === 'P-256' || key.namedCurve === 'P-384'
      ? { name: 'ECDSA', namedCurve: key.namedCurve }
      : undefined;
  }
  // rsaEncryption keys read as RSASSA-PKCS1-v1_5, id-RSASSA-PSS keys as RSA-PSS: both may sign PSS.
  return typeof key.name === 'string' && key.name.startsWith('RSA')
    ? { name: 'RSA-PSS', hash: signature.hash }
    : undefined;
}
