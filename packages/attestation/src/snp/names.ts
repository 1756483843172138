import type { Certificate } from '../certs.js';

/** The CN of a certificate's subject or issuer (AMD names keys and products there: SEV-VCEK, SEV-Milan). */
export function commonName(cert: Certificate, which: 'subject' | 'issuer'): string | null {
  const name = which === 'subject' ? cert.subjectName : cert.issuerName;
  return name.getField('CN')[0] ?? null;
}
