import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KyokKeyStore,
  RevocationList,
  SecretKeyBytes,
  parseTenantId,
  type ServingKyok,
} from '@tresor/keystore';
import {
  expectCode,
  keyStoreConformance,
} from '../../packages/keystore/src/conformance/key-store-conformance.js';
import {
  TEST_ISSUER,
  affirmingClaims,
  createTestPki,
  createTestTrustService,
  type TestIdentity,
  type TestPki,
  type TestTrustService,
} from './keystore-pki.js';
import { createKyokServerFixture } from './keystore-support.js';

let dir: string;
let pki: TestPki;
let trust: TestTrustService;
let serving: ServingKyok;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-kyok-'));
  [pki, trust] = await Promise.all([createTestPki(), createTestTrustService()]);
  serving = await (await createKyokServerFixture(dir, pki, trust, ['acme', 'globex'])).start();
});

afterAll(async () => {
  await serving.close();
  await rm(dir, { recursive: true, force: true });
});

/** The workload's token, re-minted every minute (a trust service caches its EAR the same way). */
let token: { value: Promise<string>; minted: number } | null = null;
function currentToken(): Promise<string> {
  if (token === null || Date.now() - token.minted > 60_000)
    token = { value: trust.mint(), minted: Date.now() };
  return token.value;
}

function client(
  options: { tenant?: string; identity?: TestIdentity; token?: () => Promise<string>; ttl?: number } = {},
): KyokKeyStore {
  const identity = options.identity ?? pki.client;
  return new KyokKeyStore({
    url: serving.server.url,
    tenant: options.tenant ?? 'acme',
    tls: { cert: identity.cert, key: identity.key, ca: pki.caCert },
    attestationToken: options.token ?? currentToken,
    ...(options.ttl === undefined ? {} : { unwrapCacheTtlMs: options.ttl }),
  });
}

keyStoreConformance('kyok (reference key server over loopback TLS 1.3)', async () =>
  Promise.resolve(client()),
);

describe('KYOK revocation', () => {
  it('stops key release within 1 s of `revoke` (KEY_REVOKED), and `reinstate` restores it', async () => {
    const store = client();
    const kek = await store.createKek({ label: 'acme tenant KEK' });
    const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    (await store.unwrapKey(wrapped)).dispose(); // now in the client's short cache

    // What `tresor kyok revoke --state-dir <dir> --tenant acme` does on the customer's machine.
    const revocations = new RevocationList(join(dir, 'state'));
    const revokedAt = performance.now();
    await revocations.revoke(parseTenantId('acme'));
    let refusedAfter = -1;
    while (performance.now() - revokedAt < 2000) {
      const outcome = await store.unwrapKey(wrapped).then(
        (k) => {
          k.dispose();
          return null;
        },
        (e: unknown) => e,
      );
      if (outcome !== null) {
        expect(outcome).toMatchObject({ code: 'KEY_REVOKED' });
        refusedAfter = performance.now() - revokedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(refusedAfter).toBeGreaterThanOrEqual(0);
    expect(refusedAfter).toBeLessThanOrEqual(1000);
    // A client without a cached copy is refused at once, and so are wrap and sign.
    const fresh = client();
    await expectCode(fresh.unwrapKey(wrapped), 'KEY_REVOKED');
    await expectCode(fresh.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32))), 'KEY_REVOKED');
    expect(await fresh.revocationStatus()).toMatchObject({ tenant: 'acme', revoked: true });

    await revocations.reinstate(parseTenantId('acme'));
    (await fresh.unwrapKey(wrapped)).dispose();
    expect((await fresh.revocationStatus()).revoked).toBe(false);
    await store.close();
    await fresh.close();
  });

  it('revokes through the admin endpoint too, for this tenant only', async () => {
    const acme = client();
    const globex = client({ tenant: 'globex' });
    const acmeKek = await acme.createKek();
    const globexKek = await globex.createKek();
    const a = await acme.wrapKey(acmeKek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    const g = await globex.wrapKey(globexKek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    expect((await acme.revokeTenant()).revoked).toBe(true);
    await expectCode(acme.unwrapKey(a), 'KEY_REVOKED');
    (await globex.unwrapKey(g)).dispose();
    expect((await acme.reinstateTenant()).revoked).toBe(false);
    (await acme.unwrapKey(a)).dispose();
    await acme.close();
    await globex.close();
  });

  it('caps the client cache at 1 s', () => {
    expect(() => client({ ttl: 1001 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
  });
});

describe('KYOK attestation and policy', () => {
  let kekId: string;
  let wrappedKey: Awaited<ReturnType<KyokKeyStore['wrapKey']>>;
  beforeAll(async () => {
    const store = client();
    const kek = await store.createKek();
    kekId = kek.id;
    wrappedKey = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    await store.close();
  });

  const unwrapWith = async (
    token: () => Promise<string>,
    code: Parameters<typeof expectCode>[1],
  ): Promise<void> => {
    const store = client({ token, ttl: 0 });
    await expectCode(store.unwrapKey(wrappedKey), code);
    await store.close();
  };

  it('refuses a forged token (signed by a key not in the trust service JWKS)', async () => {
    const forger = await createTestTrustService();
    await unwrapWith(() => forger.mint(), 'ATTESTATION_TOKEN_INVALID');
  });

  it('refuses an expired token, and one older than maxTokenAgeSeconds', async () => {
    const now = Math.floor(Date.now() / 1000);
    await unwrapWith(
      () => trust.mint(affirmingClaims(), { iat: now - 700, ttlSeconds: 600 }),
      'ATTESTATION_TOKEN_EXPIRED',
    );
    await unwrapWith(
      () => trust.mint(affirmingClaims(), { iat: now - 400, ttlSeconds: 3600 }),
      'ATTESTATION_TOKEN_EXPIRED',
    );
  });

  it('refuses a missing token, a token from another issuer, and a tampered token', async () => {
    const noToken = new KyokKeyStore({
      url: serving.server.url,
      tenant: 'acme',
      tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.caCert },
    });
    await expectCode(noToken.unwrapKey(wrappedKey), 'ATTESTATION_TOKEN_INVALID');
    await noToken.close();
    await unwrapWith(
      () => trust.mint(affirmingClaims(), { issuer: 'https://evil.test' }),
      'ATTESTATION_TOKEN_INVALID',
    );
    // A genuine token for a German host, edited to claim Switzerland: the signature no longer fits.
    await unwrapWith(async () => {
      const [h, p, s] = (await trust.mint(affirmingClaims({ 'tresor.residency': 'DE' }))).split('.');
      const edited = Buffer.from(p!, 'base64url').toString().replace('"DE"', '"CH"');
      return `${h!}.${Buffer.from(edited).toString('base64url')}.${s!}`;
    }, 'ATTESTATION_TOKEN_INVALID');
  });

  it("applies the customer's policy: affirming status, measurements, residency CH, no sample TEE", async () => {
    await unwrapWith(
      () => trust.mint(affirmingClaims({ 'ear.status': 'warning' })),
      'ATTESTATION_TOKEN_NOT_AFFIRMING',
    );
    await unwrapWith(
      () => trust.mint(affirmingClaims({ 'tresor.measurements': { measurement: 'cd'.repeat(48) } })),
      'MEASUREMENT_NOT_ALLOWED',
    );
    await unwrapWith(() => trust.mint(affirmingClaims({ 'tresor.residency': 'DE' })), 'RESIDENCY_VIOLATION');
    await unwrapWith(() => trust.mint(affirmingClaims({ 'tresor.tee': 'sample' })), 'SAMPLE_TEE_NOT_ALLOWED');
    // A tenant the policy file does not name gets nothing, even with a valid token.
    const unlisted = client({ tenant: 'initech', ttl: 0 });
    const kek = await unlisted.createKek();
    await expectCode(unlisted.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32))), 'POLICY_DENIED');
    await unlisted.close();
  });

  it("keeps tenants apart: another tenant's key reads as not found", async () => {
    const globex = client({ tenant: 'globex' });
    await expectCode(globex.unwrapKey(wrappedKey), 'KEY_NOT_FOUND');
    await expectCode(globex.describe(kekId as never), 'KEY_NOT_FOUND');
    expect((await globex.list()).some((k) => k.id === kekId)).toBe(false);
    await globex.close();
  });

  it('logs every decision as a JSON line without key material', async () => {
    const dataKey = randomBytes(32);
    const store = client({ ttl: 0 });
    const kek = await store.createKek();
    const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(dataKey));
    (await store.unwrapKey(wrapped)).dispose();
    await store.close();
    const lines = (await readFile(serving.decisionLog, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.decision === 'allow' && l.operation === 'unwrap' && l.keyId === kek.id)).toBe(
      true,
    );
    expect(lines.some((l) => l.decision === 'deny' && l.code === 'ATTESTATION_TOKEN_INVALID')).toBe(true);
    const allow = lines.find((l) => l.operation === 'unwrap' && l.keyId === kek.id)!;
    expect(allow).toMatchObject({
      tenant: 'acme',
      client: pki.client.fingerprint,
      tokenIssuer: TEST_ISSUER,
      tees: ['snp'],
    });
    const text = await readFile(serving.decisionLog, 'utf8');
    expect(text).not.toContain(dataKey.toString('base64url'));
    expect(text).not.toContain(dataKey.toString('base64'));
  });
});

describe('KYOK transport: TLS 1.3 with client certificates', () => {
  it('lets a workload certificate use keys but not manage them', async () => {
    const workload = client({ identity: pki.workload });
    await expectCode(workload.createKek(), 'KYOK_CLIENT_FORBIDDEN');
    await expectCode(workload.importParameters(), 'KYOK_CLIENT_FORBIDDEN');
    await expectCode(workload.revokeTenant(), 'KYOK_CLIENT_FORBIDDEN');
    const admin = client();
    const kek = await admin.createKek();
    const wrapped = await workload.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    (await workload.unwrapKey(wrapped)).dispose();
    await expectCode(workload.destroy(kek.id), 'KYOK_CLIENT_FORBIDDEN');
    await workload.close();
    await admin.close();
  });

  it('refuses clients without a certificate from the customer CA, and TLS 1.2', async () => {
    const outsider = client({ identity: pki.outsider });
    await expectCode(outsider.list(), 'KEYSTORE_UNAVAILABLE');
    await outsider.close();
    const port = serving.server.port;
    const handshake = (options: ConnectionOptions): Promise<string> =>
      new Promise((resolve) => {
        const settle = (outcome: string): void => {
          resolve(outcome);
        };
        const socket = connect({
          host: '127.0.0.1',
          port,
          ca: pki.caCert,
          servername: 'localhost',
          ...options,
        });
        socket.once('secureConnect', () => {
          // TLS 1.3 reports a missing client certificate only after the handshake, on first read.
          socket.once('data', () => {
            settle('data');
          });
          socket.once('error', (e: Error) => {
            settle(`error: ${e.message}`);
          });
          socket.write('GET /v1/tenants/acme/keys HTTP/1.1\r\nhost: localhost\r\n\r\n');
        });
        socket.once('error', (e: Error) => {
          settle(`error: ${e.message}`);
        });
      });
    expect(await handshake({ maxVersion: 'TLSv1.2', cert: pki.client.cert, key: pki.client.key })).toMatch(
      /^error: .*(version|protocol)/i,
    );
    expect(await handshake({})).toMatch(/^error: .*certificate required/i);
  });
});
