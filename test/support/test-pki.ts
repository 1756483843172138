import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * TEST-ONLY TLS material, generated fresh at run time (never stored): CAs, server certificates for
 * localhost / 127.0.0.1 / ::1, and client certificates for mutual TLS. Used by the tests of
 * server-kit, the services built on it and the KYOK key server.
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface TestIdentity {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM PKCS#8 private key. */
  readonly key: string;
}

export interface TestPki {
  /** PEM CA certificate that issued `server` and `client`. */
  readonly ca: string;
  readonly server: TestIdentity;
  readonly client: TestIdentity;
}

/** A self-signed test CA that can issue certificates with `issueTestCertificate`. */
export interface TestCa {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

async function pemPrivateKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const body = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

/** A self-signed CA valid from a minute ago for one day. */
export async function createTestCa(name: string): Promise<TestCa> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert, keys };
}

/** A leaf certificate from `ca` for TLS server (localhost, 127.0.0.1, ::1) or client authentication. */
export async function issueTestCertificate(
  ca: TestCa,
  subject: string,
  usage: 'server' | 'client',
  serial: string,
): Promise<TestIdentity> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${subject}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + DAY_MS),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
      ...(usage === 'server'
        ? [
            new x509.SubjectAlternativeNameExtension([
              { type: 'dns', value: 'localhost' },
              { type: 'ip', value: '127.0.0.1' },
              { type: 'ip', value: '::1' },
            ]),
          ]
        : []),
    ],
  });
  return { cert: cert.toString('pem'), key: await pemPrivateKey(keys.privateKey) };
}

export async function createTestPki(name = 'tresor-test'): Promise<TestPki> {
  const ca = await createTestCa(`${name} CA`);
  return {
    ca: ca.cert.toString('pem'),
    server: await issueTestCertificate(ca, 'localhost', 'server', '02'),
    client: await issueTestCertificate(ca, `${name} client`, 'client', '03'),
  };
}
