import 'reflect-metadata';
import { X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SignJWT, exportJWK, generateKeyPair, type JSONWebKeySet, type JWTPayload } from 'jose';

/**
 * TEST-ONLY key material, generated fresh at run time: a client/server PKI for the KYOK key server's
 * mutual TLS, and a stand-in trust service that signs EAR attestation tokens. Nothing here is used
 * outside tests.
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface TestIdentity {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 fingerprint, lowercase hex. */
  readonly fingerprint: string;
}

export interface TestPki {
  readonly caCert: string;
  readonly server: TestIdentity;
  /** An administrator and attested-workload client (Tresor's trust service in these tests). */
  readonly client: TestIdentity;
  /** A client from the same CA that is not an administrator. */
  readonly workload: TestIdentity;
  /** A client certificate from a CA the server does not trust. */
  readonly outsider: TestIdentity;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
}

async function ca(name: string): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert, keys };
}

async function issue(
  issuer: { cert: x509.X509Certificate; keys: CryptoKeyPair },
  name: string,
  usage: 'server' | 'client',
  serial: string,
): Promise<TestIdentity> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${name}`,
    issuer: issuer.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
      ...(usage === 'server'
        ? [
            new x509.SubjectAlternativeNameExtension([
              { type: 'ip', value: '127.0.0.1' },
              { type: 'dns', value: 'localhost' },
            ]),
          ]
        : []),
    ],
  });
  const pem = cert.toString('pem');
  return {
    cert: pem,
    key: await pemKey(keys.privateKey),
    fingerprint: new NodeX509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase(),
  };
}

export async function createTestPki(): Promise<TestPki> {
  const root = await ca('Test customer CA (test only)');
  const foreign = await ca('Some other CA (test only)');
  return {
    caCert: root.cert.toString('pem'),
    server: await issue(root, 'kyok.test', 'server', '02'),
    client: await issue(root, 'tresor-trust.test', 'client', '03'),
    workload: await issue(root, 'workload.test', 'client', '04'),
    outsider: await issue(foreign, 'outsider.test', 'client', '05'),
  };
}

export const TEST_MEASUREMENT = 'ab'.repeat(48);
export const TEST_ISSUER = 'https://trust.tresor.test';

/** The EAR claims a trust service issues for a workload that passed appraisal. */
export function affirmingClaims(overrides: Record<string, unknown> = {}): JWTPayload {
  return {
    eat_profile: 'tag:github.com,2023:veraison/ear',
    'ear.verifier-id': { developer: 'https://tresor.test', build: 'test' },
    submods: {
      cpu0: {
        'ear.status': 'affirming',
        'tresor.tee': 'snp',
        'tresor.measurements': { measurement: TEST_MEASUREMENT },
        'tresor.residency': 'CH',
        ...overrides,
      },
    },
  };
}

export interface TestTrustService {
  readonly jwks: JSONWebKeySet;
  /** Signs an EAR token valid from `iat` for `ttlSeconds`. */
  mint(
    claims?: JWTPayload,
    options?: { iat?: number; ttlSeconds?: number; issuer?: string },
  ): Promise<string>;
}

/** A stand-in trust service with a fresh ES256 key (test only). */
export async function createTestTrustService(): Promise<TestTrustService> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'trust-test-1', alg: 'ES256', use: 'sig' };
  return {
    jwks: { keys: [jwk] },
    mint: async (claims = affirmingClaims(), options = {}) => {
      const iat = options.iat ?? Math.floor(Date.now() / 1000);
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'trust-test-1', typ: 'JWT' })
        .setIssuer(options.issuer ?? TEST_ISSUER)
        .setIssuedAt(iat)
        .setExpirationTime(iat + (options.ttlSeconds ?? 300))
        .sign(privateKey);
    },
  };
}
