import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { createTestPki } from '../../../../test/support/test-pki.js';
import { generateAdminKey } from '../admin/admin-request-signer.js';
import { loadDeploymentConfig, parseDeploymentConfig } from './deployment-config.js';
import { startTrustService } from './start-trust-service.js';

let dir: string;
const TLS = { cert: '', key: '' };
const valid = () => ({
  service: { server: { port: 0, tls: TLS } },
  keystore: { backend: 'file', path: 'keys.tresor', passphraseEnv: 'TRESOR_TEST_PASSPHRASE' },
  stateDir: 'state',
  keys: {
    tokenSigning: ['sig-token'],
    documentSigning: 'sig-documents',
    meshCa: 'sig-mesh',
    auditCheckpoint: 'sig-audit',
    resourceKek: 'kek-resources',
  },
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'no error',
    (err: unknown) => (isTresorError(err) ? err.code : 'not a TresorError'),
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-deploy-'));
  const pki = await createTestPki('deployment');
  Object.assign(TLS, pki.server);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the deployment config', () => {
  it('fills in defaults and resolves paths against the config directory', async () => {
    const config = await parseDeploymentConfig(valid(), dir);
    expect(config.stateDir).toBe(join(dir, 'state'));
    expect(config.keystore).toMatchObject({ backend: 'file', path: join(dir, 'keys.tresor') });
    expect(config.meshCa).toEqual({ trustDomain: 'tresor.local', certificateLifetimeSeconds: 3600 });
    expect(config.residency).toEqual({ jurisdiction: 'CH' });
    expect(config.enforce).toEqual({ referenceValues: true, residency: true });
    expect(config.admin.keys.ids).toEqual([]);
    expect(config.admin.requestWindowSeconds).toBe(300);
    expect(config.service.issuer).toBe('tresor-trust');
  });

  it('takes a PostgreSQL database for replicas, without a password in the URL', async () => {
    expect((await parseDeploymentConfig(valid(), dir)).database).toBeUndefined();
    const database = { url: 'postgres://tresor@db.internal:5432/tresor', schema: 'trust_eu' };
    expect((await parseDeploymentConfig({ ...valid(), database }, dir)).database).toEqual(database);
    for (const bad of [
      { url: 'postgres://tresor:hunter2@db.internal/tresor' },
      { url: 'mysql://db.internal/tresor' },
      { url: 'postgres://db.internal/tresor', schema: 'Trust-EU' },
      { url: 'postgres://db.internal/tresor', password: 'x' },
      'postgres://db.internal/tresor',
    ]) {
      expect(await codeOf(parseDeploymentConfig({ ...valid(), database: bad }, dir))).toBe('CONFIG_INVALID');
    }
  });

  it('reads the service settings from a trust config file when given a path', async () => {
    await writeFile(join(dir, 'cert.pem'), TLS.cert);
    await writeFile(join(dir, 'key.pem'), TLS.key);
    await writeFile(
      join(dir, 'trust.json'),
      JSON.stringify({
        issuer: 'trust.example',
        server: { tls: { certFile: 'cert.pem', keyFile: 'key.pem' } },
      }),
    );
    await writeFile(join(dir, 'deployment.json'), JSON.stringify({ ...valid(), service: 'trust.json' }));
    const config = await loadDeploymentConfig(join(dir, 'deployment.json'));
    expect(config.service.issuer).toBe('trust.example');
    expect(config.service.server.tls.cert).toBe(TLS.cert);
  });

  it.each([
    [
      { enforce: { residency: false }, service: { mode: 'production', server: { port: 0, tls: TLS } } },
      'production without residency',
    ],
    [{ keys: { ...valid().keys, meshCa: 'has space' } }, 'a key id outside the alphabet'],
    [{ keys: { ...valid().keys, tokenSigning: [] } }, 'no token signing key'],
    [{ meshCa: { trustDomain: 'Tresor.Local' } }, 'an upper-case trust domain'],
    [{ meshCa: { certificateLifetimeSeconds: 30 } }, 'a lifetime under a minute'],
    [{ meshCa: { certificateLifetimeSeconds: 2 * 86_400 } }, 'a lifetime over a day'],
    [{ residency: { jurisdiction: 'Switzerland' } }, 'a jurisdiction that is no ISO code'],
    [{ admin: { keys: 'alice' } }, 'admin keys that are no list'],
    [{ admin: { keys: [], requestWindowSeconds: 5 } }, 'a window under 30 s'],
    [{ stateDir: '' }, 'an empty state directory'],
    [{ keystore: { backend: 'cloud' } }, 'an unknown keystore'],
    [{ typo: true }, 'an unknown member'],
  ])('refuses %j (%s) with CONFIG_INVALID', async (change, _why) => {
    expect(await codeOf(parseDeploymentConfig({ ...valid(), ...change }, dir))).toBe('CONFIG_INVALID');
  });

  it('answers any JSON with a config or a catalogue error, never another error (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.jsonValue(), fc.record({ service: fc.jsonValue(), keys: fc.jsonValue() })),
        async (value) => {
          const code = await codeOf(parseDeploymentConfig(value, dir));
          expect(code).not.toBe('not a TresorError');
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('refuses an admin key with its private half, and the file keystore in production', async () => {
    const alice = await generateAdminKey('alice');
    const privateEntry = { id: 'alice', jwk: { ...alice.publicJwk, d: 'AAAA' } };
    const env = { TRESOR_TEST_PASSPHRASE: 'test passphrase only' };
    expect(await codeOf(parseDeploymentConfig({ ...valid(), admin: { keys: [privateEntry] } }, dir))).toBe(
      'CONFIG_INVALID',
    );
    const withAlice = await parseDeploymentConfig(
      { ...valid(), admin: { keys: [{ id: 'alice', jwk: alice.publicJwk }] } },
      dir,
    );
    expect(withAlice.admin.keys.ids).toEqual(['alice']);
    const production = await parseDeploymentConfig(
      { ...valid(), service: { mode: 'production', server: { port: 0, tls: TLS } } },
      dir,
    );
    expect(await codeOf(startTrustService(production, { env }))).toBe('KEYSTORE_PRODUCTION_REFUSED');
  });
});
