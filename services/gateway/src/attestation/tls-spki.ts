import { createHash, X509Certificate } from 'node:crypto';
import { TresorError } from '@tresor/protocol';

/** Lowercase hex SHA-256 of a certificate's DER SubjectPublicKeyInfo (RuntimeData.tlsSpkiSha256). */
export function spkiSha256OfCertificate(certificate: X509Certificate): string {
  const spki = certificate.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

/** The same for the first (leaf) certificate of a PEM chain. */
export function spkiSha256OfPem(pem: string): string {
  try {
    return spkiSha256OfCertificate(new X509Certificate(pem));
  } catch (cause) {
    throw new TresorError('CONFIG_INVALID', 'the TLS certificate is not a PEM X.509 certificate', { cause });
  }
}
