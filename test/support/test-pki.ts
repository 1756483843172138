import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * TEST-ONLY TLS material, generated fresh at run time (never stored): a CA, a server certificate
 * for localhost / 127.0.0.1 / ::1, and a client certificate for mutual TLS. Used by the tests of
 * server-kit and of the services built on it.
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

async function pemPrivateKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const body = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

export async function createTestPki(name = 'tresor-test'): Promise<TestPki> {
  const now = Date.now();
  const caKeys = await newKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name} CA`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const issue = async (
    subject: string,
    serial: string,
    usage: 'server' | 'client',
  ): Promise<TestIdentity> => {
    const keys = await newKeys();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${subject}`,
      issuer: caCert.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + DAY_MS),
      signingAlgorithm: ALGORITHM,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
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
  };
  return {
    ca: caCert.toString('pem'),
    server: await issue('localhost', '02', 'server'),
    client: await issue(`${name} client`, '03', 'client'),
  };
}
