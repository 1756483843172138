import { X509Certificate } from 'node:crypto';
import {
  createTestCa,
  issueTestCertificate,
  type TestCa,
  type TestIdentity as TlsIdentity,
} from '../support/test-pki.js';
import { SignJWT, exportJWK, generateKeyPair, type JSONWebKeySet, type JWTPayload } from 'jose';

/**
 * TEST-ONLY key material, generated fresh at run time: a client/server PKI for the KYOK key server's
 * mutual TLS, and a stand-in trust service that signs EAR attestation tokens. Nothing here is used
 * outside tests.
 */
export interface TestIdentity extends TlsIdentity {
  /** SHA-256 fingerprint of the certificate, lowercase hex (what the key server's config lists). */
  readonly fingerprint: string;
}

async function issue(
  ca: TestCa,
  subject: string,
  usage: 'server' | 'client',
  serial: string,
): Promise<TestIdentity> {
  const identity = await issueTestCertificate(ca, subject, usage, serial);
  const fingerprint = new X509Certificate(identity.cert).fingerprint256.replaceAll(':', '').toLowerCase();
  return { ...identity, fingerprint };
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

export async function createTestPki(): Promise<TestPki> {
  const root = await createTestCa('Test customer CA (test only)');
  const foreign = await createTestCa('Some other CA (test only)');
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
