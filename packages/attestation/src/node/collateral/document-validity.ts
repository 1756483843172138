import type { Certificate, Crl } from '../../certs.js';

/**
 * The period a collateral document declares itself usable: a certificate's notBefore..notAfter
 * (RFC 5280 §4.1.2.5), a CRL's thisUpdate..nextUpdate (§5.1.2.4-5), Intel TCB info and QE identity
 * issueDate..nextUpdate. The cache reuses a document only inside it; a verifier refuses it outside.
 */
export interface DocumentValidity {
  readonly from: Date;
  readonly until: Date;
}

export function certificateValidity(cert: Certificate): DocumentValidity {
  return { from: cert.notBefore, until: cert.notAfter };
}

/** A CRL without nextUpdate states no end: undefined, so it is never reused from the cache. */
export function crlValidity(crl: Crl): DocumentValidity | undefined {
  return crl.nextUpdate === undefined ? undefined : { from: crl.thisUpdate, until: crl.nextUpdate };
}

/** The period in which every part is valid; undefined if any part states none or they do not overlap. */
export function jointValidity(
  parts: readonly (DocumentValidity | undefined)[],
): DocumentValidity | undefined {
  if (parts.length === 0) return undefined;
  let from = Number.NEGATIVE_INFINITY;
  let until = Number.POSITIVE_INFINITY;
  for (const part of parts) {
    if (part === undefined) return undefined;
    from = Math.max(from, part.from.getTime());
    until = Math.min(until, part.until.getTime());
  }
  return from <= until ? { from: new Date(from), until: new Date(until) } : undefined;
}

export function isValidAt(validity: DocumentValidity | undefined, now: Date): boolean {
  return (
    validity !== undefined &&
    validity.from.getTime() <= now.getTime() &&
    now.getTime() <= validity.until.getTime()
  );
}
