import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  KyokKeyStore,
  RevocationList,
  SecretKeyBytes,
  parseTenantId,
  type ServingKyok,
} from '@tresor/keystore';
import { expectCode } from '../../packages/keystore/src/conformance/key-store-conformance.js';
import {
  createTestPki,
  createTestTrustService,
  type TestPki,
  type TestTrustService,
} from './keystore-pki.js';
import { createKyokServerFixture, type KyokServerFixture } from './keystore-support.js';

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
let kyok: KyokServerFixture;
let serving: ServingKyok | undefined;
let port = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-kyok-fault-'));
  [pki, trust] = await Promise.all([createTestPki(), createTestTrustService()]);
  kyok = await createKyokServerFixture(dir, pki, trust, ['acme']);
  serving = await kyok.start();
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

    serving = await kyok.start(port);
    (await store.unwrapKey(wrapped)).dispose(); // the same client, not reopened

    await serving.close();
    serving = undefined;
    // The customer revokes while the key server is down (`tresor kyok revoke --state-dir …`).
    await new RevocationList(join(dir, 'state')).revoke(parseTenantId('acme'));
    await expectCode(store.unwrapKey(wrapped), 'KEYSTORE_UNAVAILABLE');
    serving = await kyok.start(port);
    await expectCode(store.unwrapKey(wrapped), 'KEY_REVOKED');
    await expectCode(client().unwrapKey(wrapped), 'KEY_REVOKED');
  });
});
