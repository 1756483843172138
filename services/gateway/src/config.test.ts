import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { parseGatewayConfig } from './config.js';
import { sqliteThreadFor } from './start-gateway-service.js';

let dir: string;

function config(
  serving: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    server: { tls: { certFile: 'tls.crt', keyFile: 'tls.key' } },
    stateDir: 'state',
    keystore: { backend: 'file', path: 'keys.tresor', passphraseEnv: 'X' },
    keys: { auditCheckpoint: 'k0123456789abcdef', tenantKek: 'k0123456789abcdef' },
    trust: { url: 'https://trust.example' },
    serving: { replicas: [{ url: 'https://serving.example' }], ...serving },
    tee: { kind: 'sample', signingKeyFile: 'sample.jwk' },
    ...extra,
  };
}

async function refusal(value: unknown): Promise<string> {
  try {
    await parseGatewayConfig(value, dir);
  } catch (err) {
    if (isTresorError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'accepted';
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-gateway-config-'));
  for (const name of [
    'tls.crt',
    'tls.key',
    'mesh.crt',
    'mesh.key',
    'mesh-ca.pem',
    'sample.jwk',
    'sample.pub',
  ])
    await writeFile(join(dir, name), `${name} contents`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('gateway configuration: mesh identity and replica policy', () => {
  it('a mesh identity from the trust service needs no files; the replica policy has fail-closed defaults', async () => {
    const parsed = await parseGatewayConfig(config({ mesh: { source: 'trust' } }), dir);
    expect(parsed.serving.mesh).toEqual({ source: 'trust' });
    expect(parsed.serving.meshCa).toBeUndefined();
    expect(parsed.serving.policy).toEqual({ jurisdictions: ['CH'], minimumTcb: [], requireGpu: false });
    expect(parsed.limits.attestationPerSecond).toBe(20);
  });

  it('a mesh identity from files reads certificate, key and CA', async () => {
    const parsed = await parseGatewayConfig(
      config({ mesh: { certFile: 'mesh.crt', keyFile: 'mesh.key' }, meshCaFile: 'mesh-ca.pem' }),
      dir,
    );
    expect(parsed.serving.mesh).toEqual({
      source: 'files',
      cert: 'mesh.crt contents',
      key: 'mesh.key contents',
    });
    expect(parsed.serving.meshCa).toBe('mesh-ca.pem contents');
  });

  it('refuses a mesh identity from files without the mesh CA', async () => {
    expect(await refusal(config({ mesh: { certFile: 'mesh.crt', keyFile: 'mesh.key' } }))).toMatch(
      /^CONFIG_INVALID: .*serving\.meshCaFile/,
    );
  });

  it('refuses unknown mesh sources, half a file pair and unreadable files', async () => {
    expect(await refusal(config({ mesh: { source: 'kubernetes' } }))).toMatch(/^CONFIG_INVALID/);
    expect(await refusal(config({ mesh: { certFile: 'mesh.crt' }, meshCaFile: 'mesh-ca.pem' }))).toMatch(
      /^CONFIG_INVALID/,
    );
    expect(
      await refusal(
        config({ mesh: { certFile: 'missing.crt', keyFile: 'mesh.key' }, meshCaFile: 'mesh-ca.pem' }),
      ),
    ).toMatch(/^INPUT_UNREADABLE/);
  });

  it('refuses a replica policy that is not a policy', async () => {
    const mesh = { source: 'trust' };
    expect(await refusal(config({ mesh, policy: { jurisdictions: ['ch'] } }))).toMatch(/^CONFIG_INVALID/);
    expect(await refusal(config({ mesh, policy: { jurisdictions: [] } }))).toMatch(/^CONFIG_INVALID/);
    expect(await refusal(config({ mesh, policy: { minimumTcb: [{ tee: 'sgx', components: {} }] } }))).toMatch(
      /^CONFIG_INVALID/,
    );
    expect(await refusal(config({ mesh, policy: { requireGpu: 'yes' } }))).toMatch(/^CONFIG_INVALID/);
  });

  it('production refuses the sample TEE key for replicas, and rate limits must be positive', async () => {
    expect(
      await refusal(
        config(
          { mesh: { source: 'trust' }, sampleVerifyKeyFile: 'sample.pub' },
          { mode: 'production', tee: { kind: 'configfs-tsm' } },
        ),
      ),
    ).toMatch(/^CONFIG_INVALID: .*sampleVerifyKeyFile/);
    expect(
      await refusal(config({ mesh: { source: 'trust' } }, { limits: { attestationPerSecond: 0 } })),
    ).toMatch(/^CONFIG_INVALID/);
  });
});

describe('gateway configuration: the web console', () => {
  const mesh = { mesh: { source: 'trust' } };

  it('has no console unless configured', async () => {
    expect((await parseGatewayConfig(config(mesh), dir)).console).toBeUndefined();
  });

  it('resolves the console build directory against the config file', async () => {
    const parsed = await parseGatewayConfig(config(mesh, { console: { dir: 'console-dist' } }), dir);
    expect(parsed.console).toEqual({ dir: join(dir, 'console-dist') });
    expect(Object.isFrozen(parsed.console)).toBe(true);
  });

  it.each([
    ['no directory', {}],
    ['an empty directory name', { dir: '' }],
    ['unknown members', { dir: 'x', prefix: '/admin' }],
    ['not an object', 'console-dist'],
  ])('refuses a console section with %s', async (_what, section) => {
    expect(await refusal(config(mesh, { console: section }))).toMatch(/^CONFIG_INVALID: .*console/);
  });
});

describe('gateway configuration: usage durability', () => {
  const mesh = { mesh: { source: 'trust' } };

  it('commits usage records without an fsync unless told otherwise', async () => {
    const parsed = await parseGatewayConfig(config(mesh), dir);
    expect(parsed.usage).toEqual({ durability: 'process-crash' });
    expect(Object.isFrozen(parsed.usage)).toBe(true);
    expect((await parseGatewayConfig(config(mesh, { usage: {} }), dir)).usage.durability).toBe(
      'process-crash',
    );
  });

  it('keeps the SQLite connection on the event loop without fsyncs, on a worker thread with them', async () => {
    expect(sqliteThreadFor(await parseGatewayConfig(config(mesh), dir))).toBe('inline');
    const durable = await parseGatewayConfig(config(mesh, { usage: { durability: 'power-loss' } }), dir);
    expect(sqliteThreadFor(durable)).toBe('worker');
  });

  it.each(['process-crash', 'power-loss'] as const)('accepts usage.durability "%s"', async (durability) => {
    const parsed = await parseGatewayConfig(config(mesh, { usage: { durability } }), dir);
    expect(parsed.usage.durability).toBe(durability);
  });

  it.each([
    ['an unknown level', { durability: 'none' }],
    ['a level in other case', { durability: 'Power-Loss' }],
    ['a boolean', { durability: true }],
    ['null', { durability: null }],
    ['unknown members', { durability: 'power-loss', fsync: true }],
    ['not an object', 'power-loss'],
  ])('refuses a usage section with %s', async (_what, section) => {
    expect(await refusal(config(mesh, { usage: section }))).toMatch(/^CONFIG_INVALID: .*usage/);
  });
});
