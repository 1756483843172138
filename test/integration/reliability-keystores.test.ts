import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  KyokKeyStore,
  RevocationList,
  SecretKeyBytes,
  loadKyokServerConfig,
  parseTenantId,
  serveKyok,
  type ServingKyok,
} from '@tresor/keystore';
import { expectCode } from '../../packages/keystore/src/conformance/key-store-conformance.js';
import {
  TEST_ISSUER,
  TEST_MEASUREMENT,
  createTestPki,
  createTestTrustService,
  type TestPki,
  type TestTrustService,
} from './keystore-pki.js';

/**
 * Fault injection on a customer's KYOK key server (issue #13; the fixture is the one of
 * keystore-kyok.test.ts): the server goes down, comes back, and is then revoked while down.
 *
 * Expectations: while the key server is unreachable, unwrap/wrap fail with KEYSTORE_UNAVAILABLE
 * (a clean code, no hang, and no key from a stale cache beyond its 1 s cap); once it is back the
 * SAME client works again without being reopened (automatic recovery); and a tenant revoked while
 * the server was down is refused with KEY_REVOKED as soon as it is back — the outage never turns
 * into a release.
 */

let dir: string;
let pki: TestPki;
let trust: TestTrustService;
let serving: ServingKyok | undefined;
let port = 0;

async function startServer(listenPort: number): Promise<ServingKyok> {
  await writeFile(
    join(dir, `kyok-server-${listenPort}.json`),
    JSON.stringify({
      mode: 'development',
      listen: { host: '127.0.0.1', port: listenPort },
      tls: { cert: 'tls/server.pem', key: 'tls/server.key', clientCa: 'tls/clients-ca.pem' },
      stateDir: 'state',
      keystore: {
        backend: 'file',
        path: 'state/keys.json',
        passphraseEnv: 'KYOK_TEST_PASSPHRASE',
        scryptLog2N: 14,
      },
      trustService: { jwks: 'trust-jwks.json', issuer: TEST_ISSUER, maxTokenAgeSeconds: 300 },
      admins: [pki.client.fingerprint],
      policy: 'policy.json',
    }),
  );
  return serveKyok(await loadKyokServerConfig(join(dir, `kyok-server-${listenPort}.json`)), {
    env: { KYOK_TEST_PASSPHRASE: 'test-only passphrase of the key server' },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-kyok-fault-'));
  [pki, trust] = await Promise.all([createTestPki(), createTestTrustService()]);
  await mkdir(join(dir, 'tls'));
  await writeFile(join(dir, 'tls/server.pem'), pki.server.cert);
  await writeFile(join(dir, 'tls/server.key'), pki.server.key, { mode: 0o600 });
  await writeFile(join(dir, 'tls/clients-ca.pem'), pki.caCert);
  await writeFile(join(dir, 'trust-jwks.json'), JSON.stringify(trust.jwks));
  await writeFile(
    join(dir, 'policy.json'),
    JSON.stringify({
      tenants: { acme: { allowedMeasurements: { measurement: [TEST_MEASUREMENT] }, residency: 'CH' } },
    }),
  );
  serving = await startServer(0);
  port = serving.server.port;
});

afterAll(async () => {
  await serving?.close();
  await rm(dir, { recursive: true, force: true });
});

function client(): KyokKeyStore {
  return new KyokKeyStore({
    url: `https://127.0.0.1:${port}`,
    tenant: 'acme',
    tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.caCert },
    attestationToken: () => trust.mint(),
    // No cache: every unwrap asks the key server (the default caps it at 1 s).
    unwrapCacheTtlMs: 0,
  });
}

describe('KYOK key server down, back, then revoked while down', () => {
  it('refuses cleanly while down, recovers without reopening the client, and never releases after a revocation', async () => {
    const store = client();
    const kek = await store.createKek({ label: 'acme tenant KEK' });
    const wrapped = await store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    (await store.unwrapKey(wrapped)).dispose(); // control: released while up

    await serving!.close();
    serving = undefined;
    await expectCode(store.unwrapKey(wrapped), 'KEYSTORE_UNAVAILABLE');
    await expectCode(store.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32))), 'KEYSTORE_UNAVAILABLE');

    serving = await startServer(port);
    (await store.unwrapKey(wrapped)).dispose(); // the same client, not reopened

    await serving.close();
    serving = undefined;
    // The customer revokes while the key server is down (`tresor kyok revoke --state-dir …`).
    await new RevocationList(join(dir, 'state')).revoke(parseTenantId('acme'));
    await expectCode(store.unwrapKey(wrapped), 'KEYSTORE_UNAVAILABLE');
    serving = await startServer(port);
    await expectCode(store.unwrapKey(wrapped), 'KEY_REVOKED');
    await expectCode(client().unwrapKey(wrapped), 'KEY_REVOKED');
  });
});
