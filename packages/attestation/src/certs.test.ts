import { describe, expect, it } from 'vitest';
import { readTestdata } from '../../../test/support/testdata.js';
import { extensionValue, isSignedBy, parseCertificates, sameCertificate, validityAt } from './certs.js';

describe('certificate primitives', () => {
  const [ask, ark] = parseCertificates(readTestdata('attestation/snp/gsg-milan-v2/ask_ark.pem'));
  const [vcek] = parseCertificates(readTestdata('attestation/snp/gsg-milan-v2/vcek.der'));

  it('parses PEM bundles and DER, and verifies the AMD RSA-PSS chain', async () => {
    expect(ask!.subject).toContain('CN=SEV-Milan');
    expect(ark!.subject).toContain('CN=ARK-Milan');
    expect(await isSignedBy(vcek!, ask!)).toBe(true);
    expect(await isSignedBy(ask!, ark!)).toBe(true);
    expect(await isSignedBy(ark!, ark!)).toBe(true);
    expect(await isSignedBy(vcek!, ark!)).toBe(false);
    expect(sameCertificate(ark!, ark!)).toBe(true);
    expect(sameCertificate(ark!, ask!)).toBe(false);
  });

  it('reads validity at an injected time and extensions by OID', () => {
    expect(validityAt(vcek!, new Date('2025-06-01T00:00:00Z'))).toBe('valid');
    expect(validityAt(vcek!, new Date('2030-01-01T00:00:00Z'))).toBe('expired');
    expect(validityAt(vcek!, new Date('2000-01-01T00:00:00Z'))).toBe('not_yet_valid');
    expect(extensionValue(vcek!, '1.3.6.1.4.1.3704.1.4')?.length).toBe(64);
    expect(extensionValue(vcek!, '1.2.3.4')).toBeUndefined();
  });

  it('refuses input that is not a certificate with INPUT_MALFORMED', () => {
    for (const bad of [
      new Uint8Array([1, 2, 3]),
      new TextEncoder().encode('-----BEGIN CERTIFICATE-----\nAAAA\n'),
    ]) {
      expect(() => parseCertificates(bad)).toThrow(expect.objectContaining({ code: 'INPUT_MALFORMED' }));
    }
  });
});
