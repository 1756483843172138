import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelKey } from '@tresor/crypto';
import { inspectSealedModelFile, unsealModelFile } from '@tresor/crypto/node';
import { run } from '../index.js';
import { captureIo } from '../../../../test/support/cli-io.js';
import { sampleAttester } from '@tresor/trust';
import {
  SERVING_MEASUREMENT,
  startServingTrust,
  type ServingTrust,
} from '../../../../test/support/serving-trust.js';

let dir: string;
let trust: ServingTrust;
const existingKey = new Uint8Array(randomBytes(32));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-cli-serving-'));
  await writeFile(join(dir, 'model.gguf'), randomBytes(50_000));
  await writeFile(join(dir, 'existing.key'), existingKey);
  trust = await startServingTrust({ resources: { 'models/key/existing': existingKey } });
});
afterAll(async () => {
  await trust.close();
  await rm(dir, { recursive: true, force: true });
});

const tresor = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
  const io = captureIo({}, new Date());
  const code = await run(args, io);
  return { code, out: io.out(), err: io.err() };
};
const seal = (output: string, ...extra: string[]): Promise<{ code: number; out: string; err: string }> =>
  tresor(
    'model',
    'seal',
    join(dir, 'model.gguf'),
    '-o',
    join(dir, output),
    '--trust',
    trust.url,
    '--trust-ca',
    trust.caFile,
    '--admin-key',
    trust.adminKeyFile,
    ...extra,
  );
const servingDigests = (): readonly string[] =>
  trust.referenceValues.sets.find((s) => s.component === 'serving')?.modelDigests ?? [];

describe('tresor model seal --key kbs:///…', () => {
  it('creates the key in the trust service, seals under its URI and registers the digest', async () => {
    const result = await seal('new.tresor', '--key', 'kbs:///models/key/new');
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).toContain('created key kbs:///models/key/new');
    const { header } = await inspectSealedModelFile(join(dir, 'new.tresor'));
    expect(header.keyId).toBe('kbs:///models/key/new');
    expect(servingDigests()).toContain(header.plaintextSha256);
    // The key the trust service now releases (to an attested TEE) opens the file.
    const attester = sampleAttester({
      signingKey: trust.sampleKey,
      measurement: Buffer.from(SERVING_MEASUREMENT, 'hex'),
    });
    const released = await trust.trust.client(attester).getResource('kbs:///models/key/new');
    expect(released.length).toBe(32);
    await unsealModelFile({
      input: join(dir, 'new.tresor'),
      output: join(dir, 'new.out'),
      key: await ModelKey.import(released),
      durable: false,
    });
    expect(await readFile(join(dir, 'new.out'))).toEqual(await readFile(join(dir, 'model.gguf')));
  });

  it('reuses an existing key only when the operator supplies it', async () => {
    const refused = await seal('existing.tresor', '--key', 'kbs:///models/key/existing');
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/^error USAGE_INVALID: /);
    expect(existsSync(join(dir, 'existing.tresor'))).toBe(false);
    const reused = await seal(
      'existing.tresor',
      '--key',
      'kbs:///models/key/existing',
      '--key-file',
      join(dir, 'existing.key'),
    );
    expect(reused.code).toBe(0);
    expect(reused.out).toContain('reused key');
  });

  it('refuses before writing anything when the request cannot be completed', async () => {
    const cases: [string[], number, string][] = [
      [['--key', 'kbs:///models/key/x', '--component', 'console'], 1, 'ADMIN_TARGET_NOT_FOUND'],
      [['--key', 'file:///models/key/x'], 2, 'USAGE_INVALID'],
      [['--key', 'kbs:///models/../x'], 2, 'RESOURCE_PATH_INVALID'],
      [['--key', 'kbs:///models/key/x', '--key-id', 'other'], 2, 'USAGE_INVALID'],
      [[], 2, 'USAGE_INVALID'],
    ];
    for (const [extra, exit, code] of cases) {
      const result = await seal('refused.tresor', ...extra);
      expect(result.err).toMatch(new RegExp(`^error ${code}: `));
      expect(result.code).toBe(exit);
      expect(existsSync(join(dir, 'refused.tresor'))).toBe(false);
    }
    const otherAdmin = join(dir, 'other-admin.jwk');
    const { generateAdminKey, exportAdminKey } = await import('@tresor/trust');
    await writeFile(otherAdmin, JSON.stringify(await exportAdminKey(await generateAdminKey('intruder'))));
    const unknown = await tresor(
      'model',
      'seal',
      join(dir, 'model.gguf'),
      '-o',
      join(dir, 'refused.tresor'),
      '--key',
      'kbs:///models/key/y',
      '--trust',
      trust.url,
      '--trust-ca',
      trust.caFile,
      '--admin-key',
      otherAdmin,
    );
    expect(unknown.err).toMatch(/^error ADMIN_KEY_UNKNOWN: /);
    expect(unknown.code).toBe(1);
    expect(existsSync(join(dir, 'refused.tresor'))).toBe(false);
  });
});

describe('tresor serving serve', () => {
  it('refuses a missing or invalid configuration with CONFIG_INVALID (exit 2)', async () => {
    const missing = await tresor('serving', 'serve', '--config', join(dir, 'missing.json'));
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^error CONFIG_INVALID: /);
    await writeFile(
      join(dir, 'prod.json'),
      JSON.stringify({
        mode: 'production',
        trust: { url: trust.url },
        tee: { source: 'sample', signingKeyFile: trust.sampleKeyFile },
        engine: { kind: 'echo' },
        workDir: join(dir, 'work'),
      }),
    );
    const production = await tresor('serving', 'serve', '--config', join(dir, 'prod.json'));
    expect(production.code).toBe(2);
    expect(production.err).toMatch(/^error CONFIG_INVALID: serving configuration field tee.source/);
  });
});
