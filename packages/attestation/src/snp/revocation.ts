import { crlCurrentAt, isRevokedBy, type Certificate, type Crl } from '../certs.js';
import type { CheckResult } from '../types.js';

/**
 * CRL checking for an AMD chain (RFC 5280 §6.3, reduced to what AMD issues). AMD KDS publishes, per
 * product, a CRL signed by the ARK that lists revoked ASKs/ASVKs; a CRL signed by the ASK/ASVK would
 * list revoked VCEKs/VLEKs. The CRL's signer decides which certificate it speaks about, so a CRL
 * from any other key is refused rather than ignored: a supplied CRL that cannot be checked is a
 * failure (ATTESTATION_CRL_INVALID), never a pass.
 */
export interface RevocationSubject {
  readonly ark: Certificate;
  readonly intermediate: Certificate | null;
  readonly leaf: Certificate;
}

export async function checkRevocation(
  crl: Crl,
  chain: RevocationSubject,
  now: Date,
  crlSignedBy: (issuer: Certificate) => Promise<boolean>,
): Promise<CheckResult> {
  let issuer: Certificate;
  let subject: Certificate;
  if (crl.issuer === chain.ark.subject && (await crlSignedBy(chain.ark))) {
    issuer = chain.ark;
    subject = chain.intermediate ?? chain.leaf;
  } else if (
    chain.intermediate !== null &&
    crl.issuer === chain.intermediate.subject &&
    (await crlSignedBy(chain.intermediate))
  ) {
    issuer = chain.intermediate;
    subject = chain.leaf;
  } else {
    return {
      ok: false,
      code: 'ATTESTATION_CRL_INVALID',
      detail: `the CRL (issuer ${crl.issuer}) is not signed by this chain's ARK or ASK/ASVK`,
    };
  }
  if (!crlCurrentAt(crl, now)) {
    const until = crl.nextUpdate?.toISOString() ?? 'open';
    return {
      ok: false,
      code: 'ATTESTATION_CRL_INVALID',
      detail: `the CRL is not current at ${now.toISOString()} (thisUpdate ${crl.thisUpdate.toISOString()}, nextUpdate ${until})`,
    };
  }
  if (isRevokedBy(subject, crl)) {
    return {
      ok: false,
      code: 'ATTESTATION_CERT_REVOKED',
      detail: `${subject.subject} (serial ${subject.serialNumber}) is revoked by the CRL of ${issuer.subject}`,
    };
  }
  return { ok: true, detail: `${subject.subject} is not listed in the CRL of ${issuer.subject}` };
}
