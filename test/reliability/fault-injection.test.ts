import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isErrorCode, isTresorError } from '@tresor/protocol';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import { MemoryResourceRepository, parseResourcePath, resourcePath, ResourceStore } from '@tresor/trust';
import { startTrustFixture, type TrustFixture } from '../support/trust-fixture.js';

/**
 * Fault injection for the parts that exist today (issue #13; the platform-wide faults — kill -9 of
 * serving or the gateway mid-stream, PostgreSQL/Redis restarts, SoftHSM and KYOK outages — need the
 * full local platform and are listed in docs/security.md as still to come). Each fault has a stated
 * expectation: a clean catalogue error to the caller, no secret released while the fault lasts, and
 * automatic recovery without a restart once it is gone.
 */

const SECRET = new TextEncoder().encode('model-key-0123456789abcdef012345');
const URI = 'kbs:///default/key/model';

async function codeOf(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'released';
  } catch (err) {
    if (isTresorError(err) && isErrorCode(err.code)) return err.code;
    throw err;
  }
}

describe('fault: the audit log cannot be written (disk full) during key release', () => {
  let fx: TrustFixture;
  let diskFull = false;

  beforeAll(async () => {
    fx = await startTrustFixture({
      resources: { 'default/key/model': SECRET },
      config: { resourcePolicy: 'permit(principal, action, resource);' },
      auditFault: (entry) =>
        diskFull && entry.action === 'kbs.resource.release'
          ? Promise.reject(
              Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
            )
          : Promise.resolve(),
    });
  });
  afterAll(async () => {
    await fx.close();
  });

  it('refuses the release with a catalogue code while the disk is full, releases nothing, and recovers without a restart', async () => {
    const client = fx.client();
    await client.attest();
    diskFull = true;
    const during = await codeOf(() => client.getResource(URI));
    // A release that cannot be recorded does not happen: the caller gets a clean error, not the key
    // (INTERNAL_ERROR: "no data was released"; the audit sink's own error is logged, not returned).
    expect(during).toBe('INTERNAL_ERROR');
    expect(fx.audit.filter((e) => e.action === 'kbs.resource.release' && e.outcome === 'success')).toEqual(
      [],
    );
    diskFull = false;
    expect(await client.getResource(URI)).toEqual(SECRET);
    expect(
      fx.audit.filter((e) => e.action === 'kbs.resource.release' && e.outcome === 'success'),
    ).toHaveLength(1);
  });
});

describe('fault: the trust service goes away during key release', () => {
  it('the client gets TRUST_SERVICE_UNREACHABLE and no key', async () => {
    const fx = await startTrustFixture({
      resources: { 'default/key/model': SECRET },
      config: { resourcePolicy: 'permit(principal, action, resource);' },
    });
    const client = fx.client();
    try {
      await client.attest();
      await fx.app.close();
      expect(await codeOf(() => client.getResource(URI))).toBe('TRUST_SERVICE_UNREACHABLE');
    } finally {
      await fx.close().catch(() => undefined);
    }
  });
});

describe('fault: the key-encryption key is disabled (revoked) and enabled again', () => {
  let dir: string;
  let keyStore: FileKeyStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tresor-reliability-'));
    keyStore = await FileKeyStore.open({
      path: join(dir, 'keys'),
      passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode('reliability test only')),
      mode: 'development',
      createIfMissing: true,
      scryptLog2N: 14,
    });
  });
  afterAll(async () => {
    await keyStore.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses with KEY_DISABLED while disabled, then releases again without reopening the store', async () => {
    const kekId = (await keyStore.createKek()).id;
    const store = await ResourceStore.open({ keyStore, kekId, repository: new MemoryResourceRepository() });
    await store.put(resourcePath('default', 'key', 'model'), SECRET);
    const release = () =>
      store.release(parseResourcePath('default/key/model'), (secret) => Promise.resolve(secret.slice()));
    expect(await release()).toEqual(SECRET);
    await keyStore.disable(kekId);
    expect(await codeOf(release)).toBe('KEY_DISABLED');
    await keyStore.enable(kekId);
    expect(await release()).toEqual(SECRET);
  });
});
