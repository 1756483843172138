import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { isCrlSignedBy, type Certificate, type Crl } from '../certs.js';
import { checkRevocation, type RevocationSubject } from './revocation.js';

/**
 * Revocation logic against a TEST hierarchy generated here (ECDSA P-256 stand-ins named like AMD's
 * ARK → ASK → VCEK): a real AMD CRL can only be signed by AMD, and none listing a test-data
 * certificate exists. These certificates exist only in memory and prove nothing about hardware.
 */

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const NOW = new Date('2025-06-01T00:00:00Z');
const YEAR = 365 * 24 * 3600 * 1000;

let keys: { ark: CryptoKeyPair; ask: CryptoKeyPair; leaf: CryptoKeyPair; stranger: CryptoKeyPair };
let chain: RevocationSubject;

const generate = async (): Promise<CryptoKeyPair> =>
  await crypto.subtle.generateKey(alg, false, ['sign', 'verify']);

async function issue(
  serial: string,
  subject: string,
  issuer: string,
  key: CryptoKeyPair,
  by: CryptoKeyPair,
): Promise<Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject,
    issuer,
    notBefore: new Date(NOW.getTime() - YEAR),
    notAfter: new Date(NOW.getTime() + YEAR),
    signingAlgorithm: alg,
    publicKey: key.publicKey,
    signingKey: by.privateKey,
  });
}

async function crl(
  issuer: Certificate,
  by: CryptoKeyPair,
  serials: string[],
  window: { thisUpdate: Date; nextUpdate: Date } = {
    thisUpdate: new Date(NOW.getTime() - YEAR / 12),
    nextUpdate: new Date(NOW.getTime() + YEAR / 12),
  },
): Promise<Crl> {
  return x509.X509CrlGenerator.create({
    issuer: issuer.subject,
    ...window,
    signingAlgorithm: alg,
    signingKey: by.privateKey,
    entries: serials.map((serialNumber) => ({
      serialNumber,
      revocationDate: new Date(NOW.getTime() - YEAR / 24),
    })),
  });
}

const check = (list: Crl, now = NOW) =>
  checkRevocation(list, chain, now, (issuer) => isCrlSignedBy(list, issuer));

describe('SEV-SNP CRL checking (test hierarchy)', () => {
  beforeAll(async () => {
    keys = {
      ark: await generate(),
      ask: await generate(),
      leaf: await generate(),
      stranger: await generate(),
    };
    const arkName = 'CN=ARK-Test, O=Tresor test hierarchy';
    const askName = 'CN=SEV-Test, O=Tresor test hierarchy';
    chain = {
      ark: await issue('01', arkName, arkName, keys.ark, keys.ark),
      intermediate: await issue('0100', askName, arkName, keys.ask, keys.ark),
      // The generator replaces serial 0 (AMD's VCEK serial) with a random one; tests use leaf.serialNumber.
      leaf: await issue('00', 'CN=SEV-VCEK, O=Tresor test hierarchy', askName, keys.leaf, keys.ask),
    };
  });

  it('refuses a leaf listed in the ASK-signed CRL with ATTESTATION_CERT_REVOKED', async () => {
    const result = await check(await crl(chain.intermediate!, keys.ask, [chain.leaf.serialNumber]));
    expect(result).toMatchObject({ ok: false, code: 'ATTESTATION_CERT_REVOKED' });
  });

  it('refuses an ASK listed in the ARK-signed CRL with ATTESTATION_CERT_REVOKED', async () => {
    const result = await check(await crl(chain.ark, keys.ark, ['0100']));
    expect(result).toMatchObject({ ok: false, code: 'ATTESTATION_CERT_REVOKED' });
  });

  it('scopes a CRL to the certificates its signer issued', async () => {
    // The leaf's serial in the ARK's CRL names an ASK the ARK issued, not the VCEK the ASK issued.
    expect(await check(await crl(chain.ark, keys.ark, [chain.leaf.serialNumber, '02']))).toMatchObject({
      ok: true,
    });
    expect(await check(await crl(chain.intermediate!, keys.ask, ['0100', '05']))).toMatchObject({ ok: true });
  });

  it('refuses a CRL signed by another key in the issuer name with ATTESTATION_CRL_INVALID', async () => {
    const forged = await crl(chain.ark, keys.stranger, []);
    expect(await check(forged)).toMatchObject({ ok: false, code: 'ATTESTATION_CRL_INVALID' });
  });

  it('refuses a CRL outside its thisUpdate..nextUpdate window with ATTESTATION_CRL_INVALID', async () => {
    const list = await crl(chain.intermediate!, keys.ask, []);
    expect(await check(list)).toMatchObject({ ok: true });
    expect(await check(list, new Date(NOW.getTime() + YEAR / 6))).toMatchObject({
      ok: false,
      code: 'ATTESTATION_CRL_INVALID',
    });
    expect(await check(list, new Date(NOW.getTime() - YEAR / 6))).toMatchObject({
      ok: false,
      code: 'ATTESTATION_CRL_INVALID',
    });
  });
});
