import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServingConfig, parseServingConfig } from './config.js';

const LOCAL = {
  mode: 'local',
  trust: { url: 'https://127.0.0.1:8443' },
  tee: { source: 'sample', signingKeyFile: 'sample.jwk' },
  models: [{ id: 'tresor-demo', file: 'demo.tresor', key: 'kbs:///models/key/demo' }],
  engine: { kind: 'echo' },
};
const PRODUCTION = {
  mode: 'production',
  trust: { url: 'https://trust.tresor.internal:8443' },
  tee: { source: 'configfs-tsm' },
  gpu: { requireGpu: true },
  engine: { kind: 'llama' },
  workDir: '/dev/shm/tresor',
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-serving-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('serving configuration', () => {
  it('fills defaults, resolves paths against the file and freezes the result', async () => {
    const file = join(dir, 'serving.json');
    await writeFile(file, JSON.stringify(LOCAL));
    const config = await loadServingConfig(file);
    expect(config.tee).toMatchObject({ source: 'sample', signingKeyFile: join(dir, 'sample.jwk'), svn: 1 });
    expect(config.models[0]?.file).toBe(join(dir, 'demo.tresor'));
    expect(config.concurrency).toEqual({ maxConcurrent: 4, maxQueue: 32, retryAfterSeconds: 1 });
    expect(config.mtls).toMatchObject({ required: true, trustDomain: 'tresor.local' });
    expect(config.tls).toEqual({ source: 'mesh' });
    expect(Object.isFrozen(config.models[0])).toBe(true);
    expect(parseServingConfig(PRODUCTION).mode).toBe('production');
  });

  const upstream = (restart: unknown): unknown => ({
    ...LOCAL,
    models: [],
    engine: { kind: 'openai-upstream', command: ['vllm', '{model}', '{port}'], restart },
  });

  it('gives the started upstream restart defaults (0.5 s doubling to 30 s, 5 rapid restarts)', () => {
    const config = parseServingConfig(upstream(undefined));
    expect(config.engine.kind === 'openai-upstream' && config.engine.restart).toEqual({
      initialDelayMs: 500,
      maxDelayMs: 30_000,
      stableAfterSeconds: 60,
      maxRapidRestarts: 5,
      healthIntervalSeconds: 10,
      healthTimeoutSeconds: 5,
      healthFailures: 3,
    });
    const off = parseServingConfig(upstream({ maxRapidRestarts: 0, healthIntervalSeconds: 0 }));
    expect(off.engine).toMatchObject({ restart: { maxRapidRestarts: 0, healthIntervalSeconds: 0 } });
  });

  const refused: [string, unknown, string][] = [
    [
      'a restart ceiling below the first delay',
      upstream({ initialDelayMs: 1000, maxDelayMs: 999 }),
      'engine.restart.maxDelayMs',
    ],
    ['a zero first restart delay', upstream({ initialDelayMs: 0 }), 'engine.restart.initialDelayMs'],
    ['negative rapid restarts', upstream({ maxRapidRestarts: -1 }), 'engine.restart.maxRapidRestarts'],
    ['zero health probe failures', upstream({ healthFailures: 0 }), 'engine.restart.healthFailures'],
    ['an unknown restart setting', upstream({ forever: true }), 'engine.restart.forever'],
    [
      'production with the sample TEE',
      { ...PRODUCTION, tee: { source: 'sample', signingKeyFile: 'k' } },
      'tee.source',
    ],
    [
      'production auto with a sample key',
      { ...PRODUCTION, tee: { source: 'auto', signingKeyFile: 'k' } },
      'tee.signingKeyFile',
    ],
    ['production without mTLS', { ...PRODUCTION, mtls: { required: false } }, 'mtls.required'],
    [
      'production with a file certificate',
      { ...PRODUCTION, tls: { source: 'files', certFile: 'c', keyFile: 'k' } },
      'tls.source',
    ],
    ['production without a workDir', { ...PRODUCTION, workDir: undefined }, 'workDir'],
    [
      'a key that is not a kbs URI',
      { ...LOCAL, models: [{ id: 'm', file: 'f', key: 'file:///k' }] },
      'models.0.key',
    ],
    ['duplicate model ids', { ...LOCAL, models: [LOCAL.models[0], LOCAL.models[0]] }, 'models.1.id'],
    ['models and a model directory', { ...LOCAL, modelDirectory: 'models' }, 'modelDirectory'],
    ['an http trust URL', { ...LOCAL, trust: { url: 'http://trust' } }, 'trust.url'],
    [
      'an upstream with url and socket',
      { ...LOCAL, engine: { kind: 'openai-upstream', url: 'http://127.0.0.1:8000', socketPath: '/s' } },
      'engine',
    ],
    ['an unknown setting', { ...LOCAL, debugEndpoints: true }, 'debugEndpoints'],
    [
      'a short measurement',
      { ...LOCAL, tee: { source: 'sample', signingKeyFile: 'k', measurement: 'ab' } },
      'tee.measurement',
    ],
  ];
  for (const [what, value, path] of refused) {
    it(`refuses ${what} (CONFIG_INVALID naming ${path})`, () => {
      expect(() => parseServingConfig(value)).toThrow(
        expect.objectContaining({
          code: 'CONFIG_INVALID',
          details: expect.objectContaining({ path }) as unknown,
        }),
      );
    });
  }

  it('refuses an unreadable or non-JSON file', async () => {
    await expect(loadServingConfig(join(dir, 'missing.json'))).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{ not json');
    await expect(loadServingConfig(bad)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
