import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { ErrorCode } from '@tresor/protocol';
import { isSignedBy, sameCertificate, validityAt, type Certificate } from '../certs.js';
import type { SignatureVerifier } from '../signatures/index.js';

/**
 * Examination of an Intel certificate chain (PCK chain from the quote, or a collateral issuer
 * chain) against the pinned Intel SGX Root CA. Split in two so the expensive, time-independent part
 * (signatures, anchoring) can be cached by the chain's bytes while validity is judged at each
 * verification's `now`.
 */

export interface ChainExamination {
  /** Leaf first, as Intel ships chains. */
  readonly certificates: readonly Certificate[];
  /** Undefined when every certificate is signed by the next and every issuer is a CA; else what failed. */
  readonly signatureProblem: string | undefined;
  /** True when the chain ends in the pinned root, or in a certificate the pinned root signed. */
  readonly anchored: boolean;
}

/** RFC 5280 §6.1.3: each certificate is signed by the next one, and each issuer is a CA (§4.2.1.9). */
export async function examineChain(
  certificates: readonly Certificate[],
  root: Certificate,
  signatures: SignatureVerifier,
): Promise<ChainExamination> {
  try {
    return await examineLinks(certificates, root, signatures);
  } catch {
    // @peculiar/x509 parses extensions lazily and throws on malformed ones: such a chain is refused.
    return {
      certificates,
      signatureProblem: 'a certificate of the chain has a malformed extension',
      anchored: false,
    };
  }
}

async function examineLinks(
  certificates: readonly Certificate[],
  root: Certificate,
  signatures: SignatureVerifier,
): Promise<ChainExamination> {
  const links = certificates.map(async (cert, i): Promise<string | undefined> => {
    const issuer = certificates[i + 1] ?? root;
    if (i + 1 < certificates.length && !isCa(issuer)) return `${commonName(issuer)} is not a CA certificate`;
    if (!(await isSignedBy(cert, issuer, signatures)))
      return `${commonName(cert)} is not signed by ${commonName(issuer)}`;
    return undefined;
  });
  const problems = (await Promise.all(links)).filter((p) => p !== undefined);
  const top = certificates.at(-1);
  const anchored =
    top !== undefined && (sameCertificate(top, root) || (await isSignedBy(top, root, signatures)));
  return {
    certificates,
    signatureProblem: certificates.length === 0 ? 'the chain is empty' : problems[0],
    anchored,
  };
}

export interface ValidityProblem {
  readonly code: ErrorCode;
  readonly detail: string;
}

/** The first certificate of `chain` (or the root) not valid at `now`, RFC 5280 §4.1.2.5. */
export function chainValidityProblem(
  chain: readonly Certificate[],
  root: Certificate,
  now: Date,
): ValidityProblem | undefined {
  for (const cert of [...chain, root]) {
    const validity = validityAt(cert, now);
    if (validity === 'expired') {
      return {
        code: 'ATTESTATION_CERT_EXPIRED',
        detail: `${commonName(cert)} expired at ${cert.notAfter.toISOString()}`,
      };
    }
    if (validity === 'not_yet_valid') {
      return {
        code: 'ATTESTATION_CERT_NOT_YET_VALID',
        detail: `${commonName(cert)} is valid only from ${cert.notBefore.toISOString()}`,
      };
    }
  }
  return undefined;
}

export function commonName(cert: Certificate): string {
  try {
    return cert.subjectName.getField('CN')[0] ?? cert.subject;
  } catch {
    return cert.subject;
  }
}

export function issuerCommonName(cert: Certificate): string {
  try {
    return cert.issuerName.getField('CN')[0] ?? cert.issuer;
  } catch {
    return cert.issuer;
  }
}

function isCa(cert: Certificate): boolean {
  return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}
