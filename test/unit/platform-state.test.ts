import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TresorError } from '@tresor/protocol';
import { parseTresorPolicy } from '@tresor/sdk';
import { loadDeploymentConfig } from '@tresor/trust';
import { stateLayout, type StateLayout } from '../../apps/cli/src/platform/layout.js';
import { ensureLocalTls } from '../../apps/cli/src/platform/local-ca.js';
import {
  DEFAULT_GATEWAY_PORT,
  parsePortFlag,
  platformPorts,
  requireFreePorts,
} from '../../apps/cli/src/platform/ports.js';
import {
  createStateDirs,
  ensurePlatformRecord,
  ensureSecrets,
  markDone,
  readPlatformRecord,
} from '../../apps/cli/src/platform/state.js';
import { writeTrustConfig, LOCAL_RESOURCE_POLICY } from '../../apps/cli/src/platform/trust-setup.js';
import { localBuildMeasurement, localReleaseLabel } from '../../apps/cli/src/platform/provision-trust.js';
import { localPolicy, productionPolicyExample } from '../../apps/cli/src/platform/client-files.js';
import { childEnv } from '../../apps/cli/src/platform/children.js';
import { writeServiceConfigs, type ServiceConfigInput } from '../../apps/cli/src/platform/service-configs.js';
import { loadServingConfig } from '@tresor/serving';
import { loadGatewayConfig } from '@tresor/gateway';

let dir: string;
let layout: StateLayout;
const now = new Date('2026-06-01T00:00:00Z');
const silent = (): void => undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-state-'));
  layout = stateLayout('.tresor', dir);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TresorError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('state directory', () => {
  it('is created 0700 with secrets 0600, and a second set-up creates nothing', async () => {
    await createStateDirs(layout);
    const created: string[] = [];
    const secrets = await ensureSecrets(layout, (l) => created.push(l));
    const record = await ensurePlatformRecord(layout, secrets, (l) => created.push(l), now);
    expect(created).toHaveLength(6);
    expect(await mode(layout.root)).toBe(0o700);
    expect(await mode(layout.secretsDir)).toBe(0o700);
    for (const file of [
      layout.keystorePassphrase,
      layout.gatewayKeystorePassphrase,
      layout.adminKey,
      layout.sampleTeeKey,
      layout.keystore,
      layout.gatewayKeystore,
    ]) {
      expect(await mode(file)).toBe(0o600);
    }

    const again: string[] = [];
    await createStateDirs(layout);
    const secrets2 = await ensureSecrets(layout, (l) => again.push(l));
    const record2 = await ensurePlatformRecord(layout, secrets2, (l) => again.push(l), now);
    expect(again).toEqual([]);
    expect(record2).toEqual(record);
    expect(secrets2.sampleKey.verifyKey.hex).toBe(secrets.sampleKey.verifyKey.hex);
    expect(secrets2.adminKey.publicJwk).toEqual(secrets.adminKey.publicJwk);
  });

  it('tightens a state directory that others could read', async () => {
    await createStateDirs(layout);
    const { chmod } = await import('node:fs/promises');
    await chmod(layout.root, 0o755);
    await createStateDirs(layout);
    expect(await mode(layout.root)).toBe(0o700);
  });

  it('never writes a secret into platform.json', async () => {
    await createStateDirs(layout);
    const secrets = await ensureSecrets(layout, silent);
    await ensurePlatformRecord(layout, secrets, silent, now);
    const text = await readFile(layout.platformJson, 'utf8');
    expect(text).not.toContain(secrets.keystorePassphrase);
    const adminJwk = JSON.parse(await readFile(layout.adminKey, 'utf8')) as { d: string };
    expect(text).not.toContain(adminJwk.d);
  });

  it('records one-time steps once', async () => {
    await createStateDirs(layout);
    const secrets = await ensureSecrets(layout, silent);
    let record = await ensurePlatformRecord(layout, secrets, silent, now);
    record = await markDone(layout, record, 'inventory');
    record = await markDone(layout, record, 'inventory');
    expect(record.done).toEqual(['inventory']);
    expect((await readPlatformRecord(layout))?.done).toEqual(['inventory']);
  });

  it.each([
    ['not JSON', '{'],
    ['another version', JSON.stringify({ version: 2, createdAt: 'x', done: [], trustKeys: {} })],
    ['a bad key id', JSON.stringify({ version: 1, createdAt: 'x', done: [], trustKeys: { meshCa: '../x' } })],
    ['steps that are not strings', JSON.stringify({ version: 1, createdAt: 'x', done: [1], trustKeys: {} })],
    ['no gateway keys', 'GATEWAYLESS'],
  ])('refuses a platform.json with %s', async (_what, text) => {
    await createStateDirs(layout);
    if (text === 'GATEWAYLESS') {
      await ensurePlatformRecord(layout, await ensureSecrets(layout, silent), silent, now);
      const record = JSON.parse(await readFile(layout.platformJson, 'utf8')) as Record<string, unknown>;
      delete record.gatewayKeys;
      text = JSON.stringify(record);
    }
    await writeFile(layout.platformJson, text);
    expect(await codeOf(readPlatformRecord(layout))).toBe('CONFIG_INVALID');
  });

  it.each([
    ['keystore passphrase', (l: StateLayout) => l.keystorePassphrase, 'short\n'],
    ['gateway keystore passphrase', (l: StateLayout) => l.gatewayKeystorePassphrase, 'zz'.repeat(32)],
    ['admin key', (l: StateLayout) => l.adminKey, '{"kid":"x"}'],
    ['sample TEE key', (l: StateLayout) => l.sampleTeeKey, 'not a key'],
  ])('refuses a damaged %s', async (_what, file, text) => {
    await createStateDirs(layout);
    await ensureSecrets(layout, silent);
    await writeFile(file(layout), text);
    expect(await codeOf(ensureSecrets(layout, silent))).toBe('CONFIG_INVALID');
  });
});

describe('local CA', () => {
  it('issues a CA and server certificates for loopback that chain to it, 0600 keys', async () => {
    await createStateDirs(layout);
    const tls = await ensureLocalTls(layout.root, ['trust', 'gateway'], new Date());
    expect(tls.issued).toEqual(['local CA', 'trust certificate', 'gateway certificate']);
    const ca = new X509Certificate(tls.caCert);
    const leaf = new X509Certificate(await readFile(tls.servers.trust!.certFile));
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(leaf.checkHost('localhost')).toBe('localhost');
    expect(leaf.checkHost('example.com')).toBeUndefined();
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(await mode(tls.servers.trust!.keyFile)).toBe(0o600);
    expect(await mode(join(layout.tlsDir, 'ca.key'))).toBe(0o600);
  });

  it('reuses current certificates and renews those about to expire', async () => {
    await createStateDirs(layout);
    const start = new Date();
    await ensureLocalTls(layout.root, ['serving'], start);
    expect((await ensureLocalTls(layout.root, ['serving'], start)).issued).toEqual([]);
    const in380Days = new Date(start.getTime() + 380 * 86_400_000);
    expect((await ensureLocalTls(layout.root, ['serving'], in380Days)).issued).toEqual([
      'serving certificate',
    ]);
  });

  it('re-issues a server certificate from another CA', async () => {
    await createStateDirs(layout);
    const tls = await ensureLocalTls(layout.root, ['gateway'], new Date());
    const other = stateLayout('other', dir);
    await createStateDirs(other);
    const foreign = await ensureLocalTls(other.root, ['gateway'], new Date());
    await writeFile(tls.servers.gateway!.certFile, await readFile(foreign.servers.gateway!.certFile));
    expect((await ensureLocalTls(layout.root, ['gateway'], new Date())).issued).toEqual([
      'gateway certificate',
    ]);
  });

  it('refuses a damaged CA key', async () => {
    await createStateDirs(layout);
    await ensureLocalTls(layout.root, [], new Date());
    await writeFile(
      join(layout.tlsDir, 'ca.key'),
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    );
    expect(await codeOf(ensureLocalTls(layout.root, [], new Date()))).toBe('CONFIG_INVALID');
  });
});

describe('ports', () => {
  let blocker: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => {
      if (blocker === undefined) r(undefined);
      else blocker.close(r);
    });
    blocker = undefined;
  });

  it('derives trust and serving from the gateway port', () => {
    expect(platformPorts()).toEqual({
      gateway: DEFAULT_GATEWAY_PORT,
      trust: DEFAULT_GATEWAY_PORT + 1,
      serving: DEFAULT_GATEWAY_PORT + 2,
    });
    expect(platformPorts(9000)).toEqual({ gateway: 9000, trust: 9001, serving: 9002 });
  });

  it.each(['0', '65534', '70000', '-1', 'abc', '80.5', '', '123456'])('refuses --port %s', (text) => {
    expect(() => parsePortFlag(text)).toThrow(TresorError);
  });

  it('accepts every port whose two neighbours exist', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65533 }), (port) => {
        expect(parsePortFlag(String(port))).toBe(port);
      }),
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        if (/^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65533) return;
        expect(() => parsePortFlag(text)).toThrow(TresorError);
      }),
    );
  });

  it('refuses a busy port with PORT_IN_USE naming the component', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const address = blocker.address();
    const busy = typeof address === 'object' && address !== null ? address.port : 0;
    const err = await requireFreePorts({ gateway: busy - 1, trust: busy, serving: busy + 1 }).catch(
      (e: unknown) => e,
    );
    // gateway busy-1 may itself be taken on a shared machine; the trust port is certainly.
    expect((err as TresorError).code).toBe('PORT_IN_USE');
    expect((err as TresorError).message).toMatch(/--port/);
  });

  it('passes when the ports are free', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const address = blocker.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    await new Promise((r) => blocker!.close(r));
    blocker = undefined;
    await expect(requireFreePorts({ gateway: port, trust: port, serving: port })).resolves.toBeUndefined();
  });

  it('says which component a taken port was meant for', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const address = blocker.address();
    const busy = typeof address === 'object' && address !== null ? address.port : 0;
    const err = (await requireFreePorts({ gateway: busy, trust: busy, serving: busy }).catch(
      (e: unknown) => e,
    )) as TresorError;
    expect(err.code).toBe('PORT_IN_USE');
    expect(err.message).toContain(`port ${String(busy)} for the gateway`);
  });
});

describe('trust configuration', () => {
  it('is a deployment config the trust service accepts: development, enforcing, sample key pinned', async () => {
    await createStateDirs(layout);
    const secrets = await ensureSecrets(layout, silent);
    const record = await ensurePlatformRecord(layout, secrets, silent, now);
    const tls = await ensureLocalTls(layout.root, ['trust'], new Date());
    await writeTrustConfig({
      layout,
      record,
      secrets,
      host: '127.0.0.1',
      port: 9445,
      tls: tls.servers.trust!,
    });
    const config = await loadDeploymentConfig(layout.trustDeployment);
    expect(config.service.mode).toBe('development');
    expect(config.service.server.port).toBe(9445);
    expect(config.service.attestation.sampleVerifyKey).toBe(secrets.sampleKey.verifyKey.hex);
    expect(config.enforce).toEqual({ referenceValues: true, residency: true });
    expect(config.residency.jurisdiction).toBe('CH');
    expect(config.keys.resourceKek).toBe(record.trustKeys.resourceKek);
    expect(config.service.resourcePolicy).toBe(LOCAL_RESOURCE_POLICY);
    // No secret in the configs: the passphrase travels in the environment only.
    const text =
      (await readFile(layout.trustDeployment, 'utf8')) + (await readFile(layout.trustConfig, 'utf8'));
    expect(text).not.toContain(secrets.keystorePassphrase);
    expect(text).not.toContain('PRIVATE KEY');
  });
});

describe('serving and gateway configurations', () => {
  async function input(): Promise<ServiceConfigInput> {
    await createStateDirs(layout);
    const secrets = await ensureSecrets(layout, silent);
    const record = await ensurePlatformRecord(layout, secrets, silent, now);
    const tls = await ensureLocalTls(layout.root, ['trust', 'serving', 'gateway'], new Date());
    return {
      layout,
      record,
      secrets,
      tls,
      host: '127.0.0.1',
      ports: { gateway: 9444, trust: 9445, serving: 9446 },
      urls: { trust: 'https://127.0.0.1:9445', serving: 'https://127.0.0.1:9446' },
      modelId: 'tresor-demo',
      measurements: { serving: 'aa'.repeat(48), gateway: 'bb'.repeat(48) },
      servingWorkDir: join(dir, 'work'),
    };
  }

  it('serving: local mode, sample TEE with its measurement, the sealed model and its kbs key, mTLS from the gateway', async () => {
    await writeServiceConfigs(await input());
    const config = await loadServingConfig(layout.servingConfig);
    expect(config.mode).toBe('local');
    expect(config.listen.port).toBe(9446);
    expect(config.tee).toMatchObject({
      source: 'sample',
      measurement: 'aa'.repeat(48),
      signingKeyFile: layout.sampleTeeKey,
    });
    expect(config.models).toEqual([
      {
        id: 'tresor-demo',
        file: join(layout.modelsDir, 'tresor-demo.tresor'),
        key: 'kbs:///local/model-key/tresor-demo',
      },
    ]);
    expect(config.mtls.required).toBe(true);
    expect(config.mtls.allowedPeers).toEqual(['spiffe://tresor.local/gateway/_']);
    expect(config.engine.kind).toBe('llama');
    expect(config.workDir).toBe(join(dir, 'work'));
  });

  it('gateway: local mode, its own keystore, the serving replica, admin key of the local admin', async () => {
    const i = await input();
    await writeServiceConfigs(i);
    const config = await loadGatewayConfig(layout.gatewayConfig);
    expect(config.mode).toBe('local');
    expect(config.server.port).toBe(9444);
    expect(config.keys).toEqual(i.record.gatewayKeys);
    expect(config.serving.replicas).toEqual([{ url: 'https://127.0.0.1:9446' }]);
    expect(config.tee).toMatchObject({ kind: 'sample', measurement: 'bb'.repeat(48) });
    expect(config.serving.sampleVerifyKey?.trim()).toBe(i.secrets.sampleKey.verifyKey.hex);
    const text = await readFile(layout.gatewayConfig, 'utf8');
    expect(text).not.toContain(i.secrets.gatewayKeystorePassphrase);
  });
});

describe('local build measurement', () => {
  it('is a SHA-384 over the compiled files that changes with any of them', async () => {
    const dist = join(dir, 'dist');
    await createStateDirs(stateLayout('dist/sub', dir));
    await writeFile(join(dist, 'a.js'), 'one');
    await writeFile(join(dist, 'sub', 'b.js'), 'two');
    await writeFile(join(dist, 'notes.md'), 'ignored');
    const first = await localBuildMeasurement(dist);
    expect(first).toMatch(/^[0-9a-f]{96}$/);
    expect(await localBuildMeasurement(dist)).toBe(first);
    await writeFile(join(dist, 'notes.md'), 'still ignored');
    expect(await localBuildMeasurement(dist)).toBe(first);
    await writeFile(join(dist, 'sub', 'b.js'), 'three');
    expect(await localBuildMeasurement(dist)).not.toBe(first);
    expect(localReleaseLabel(first)).toBe(`local-${first.slice(0, 12)}`);
  });

  it('refuses a missing build', async () => {
    await expect(localBuildMeasurement(join(dir, 'nope'))).rejects.toThrow();
  });
});

describe('client policies', () => {
  const documentKey = { kty: 'EC', crv: 'P-256', x: 'x'.repeat(43), y: 'y'.repeat(43) } as const;
  const sampleHex = 'ab'.repeat(32);

  it('the local policy allows this installation sample TEE only', () => {
    const policy = parseTresorPolicy(localPolicy(documentKey, sampleHex));
    expect(policy.allowSampleTee).toBe(true);
    expect(policy.sampleVerifyKeys.map((k) => k.hex)).toEqual([sampleHex]);
    expect(policy.jurisdictions).toEqual(['CH']);
  });

  it('the production example is a valid policy that refuses the sample TEE', () => {
    const policy = parseTresorPolicy(productionPolicyExample(documentKey));
    expect(policy.allowSampleTee).toBe(false);
    expect(policy.sampleVerifyKeys).toEqual([]);
    expect(policy.requireGpu).toBe(true);
  });
});

describe('child environment', () => {
  it('passes PATH and HOME but no credentials of the caller', () => {
    const env = childEnv(
      {
        PATH: '/bin',
        HOME: '/root',
        TRESOR_API_KEY: 'tr_secret',
        AWS_SECRET_ACCESS_KEY: 'x',
        OPENAI_API_KEY: 'y',
      },
      { TRESOR_KEYSTORE_PASSPHRASE: 'p' },
    );
    expect(env).toEqual({ PATH: '/bin', HOME: '/root', TRESOR_KEYSTORE_PASSPHRASE: 'p' });
  });
});
