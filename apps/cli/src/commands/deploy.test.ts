import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseReferenceValueSet } from '@tresor/trust';
import { captureIo } from '../../../../test/support/cli-io.js';
import { run } from '../index.js';

const DIGEST = (byte: string) => `sha256:${byte.repeat(32)}`;
const PINNED_VALUES = `release: 1.4.0
trust:
  image: ghcr.io/acme/trust:1.4.0@${DIGEST('11')}
  measurements: { measurement: ["${'aa'.repeat(48)}"] }
gateway:
  image: ghcr.io/acme/gateway:1.4.0@${DIGEST('22')}
  measurements: { measurement: ["${'bb'.repeat(48)}"] }
serving:
  image: ghcr.io/acme/serving:1.4.0@${DIGEST('33')}
  measurements: { measurement: ["${'cc'.repeat(48)}"] }
redis:
  image: docker.io/library/redis:7.4@${DIGEST('44')}
`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tresor-cli-deploy-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('tresor deploy render', () => {
  it('renders the defaults without a values file, says what it wrote and warns about placeholders', async () => {
    const io = captureIo();
    const out = join(dir, 'manifests');
    expect(await run(['deploy', 'render', '--out', out], io)).toBe(0);
    expect(readdirSync(out).sort()).toEqual([
      '00-namespaces.yaml',
      '10-trust.yaml',
      '20-redis.yaml',
      '30-serving.yaml',
      '40-gateway.yaml',
      '50-network-policies.yaml',
      'reference-values.json',
    ]);
    expect(io.out()).toContain(`wrote ${join(out, '40-gateway.yaml')} (6 objects)`);
    expect(io.out()).toMatch(/init data serving \(snp\): sha256:[0-9a-f]{64}/);
    expect(io.err()).toContain('warning: trust.image is a placeholder digest');
    const gateway = parseAllDocuments(readFileSync(join(out, '40-gateway.yaml'), 'utf8')).map(
      (d) => d.toJS() as { kind: string },
    );
    expect(gateway.map((o) => o.kind)).toContain('HorizontalPodAutoscaler');
    const references = JSON.parse(readFileSync(join(out, 'reference-values.json'), 'utf8')) as {
      referenceValues: unknown[];
    };
    for (const set of references.referenceValues) expect(() => parseReferenceValueSet(set)).not.toThrow();
  });

  it('reads a YAML values file and passes --strict once digests and measurements are set', async () => {
    writeFileSync(join(dir, 'values.yaml'), PINNED_VALUES);
    const io = captureIo();
    const out = join(dir, 'out');
    expect(
      await run(['deploy', 'render', '--out', out, '--values', join(dir, 'values.yaml'), '--strict'], io),
    ).toBe(0);
    expect(io.err()).toBe('');
    expect(readFileSync(join(out, '40-gateway.yaml'), 'utf8')).toContain(
      `ghcr.io/acme/gateway:1.4.0@${DIGEST('22')}`,
    );
  });

  it('--strict refuses placeholder digests with exit 2 and writes nothing', async () => {
    const io = captureIo();
    const out = join(dir, 'out');
    expect(await run(['deploy', 'render', '--out', out, '--strict'], io)).toBe(2);
    expect(io.err()).toMatch(/^error CONFIG_INVALID: --strict: trust\.image is a placeholder digest/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses invalid values with CONFIG_INVALID naming the path, exit 2, nothing written', async () => {
    writeFileSync(join(dir, 'bad.yaml'), 'gateway:\n  image: ghcr.io/acme/gateway:1.4.0\n');
    const io = captureIo();
    expect(
      await run(['deploy', 'render', '--out', join(dir, 'out'), '--values', join(dir, 'bad.yaml')], io),
    ).toBe(2);
    expect(io.err()).toContain(`error CONFIG_INVALID: ${join(dir, 'bad.yaml')}: gateway.image:`);
    expect(io.err()).toMatch(/\nfix: /);
    expect(readdirSync(dir)).toEqual(['bad.yaml']);
  });

  it('refuses a values file that names a secret in a service config', async () => {
    writeFileSync(
      join(dir, 'v.json'),
      JSON.stringify({ trust: { config: { database: { password: 'hunter2' } } } }),
    );
    const io = captureIo();
    expect(
      await run(['deploy', 'render', '--out', join(dir, 'out'), '--values', join(dir, 'v.json')], io),
    ).toBe(2);
    expect(io.err()).toContain('trust.config.database.password');
    expect(io.err()).not.toContain('hunter2');
  });

  it('answers a missing values file with INPUT_UNREADABLE (exit 2)', async () => {
    const io = captureIo();
    expect(
      await run(['deploy', 'render', '--out', join(dir, 'o'), '--values', join(dir, 'nope.yaml')], io),
    ).toBe(2);
    expect(io.err()).toContain('error INPUT_UNREADABLE');
  });

  it('refuses a non-empty --out unless --force, then replaces it whole', async () => {
    const out = join(dir, 'out');
    mkdirSync(out);
    writeFileSync(join(out, 'old.yaml'), 'x');
    const refused = captureIo();
    expect(await run(['deploy', 'render', '--out', out], refused)).toBe(2);
    expect(refused.err()).toContain('is not empty');
    expect(readdirSync(out)).toEqual(['old.yaml']);
    expect(await run(['deploy', 'render', '--out', out, '--force'], captureIo())).toBe(0);
    expect(readdirSync(out)).not.toContain('old.yaml');
  });

  it('needs --out', async () => {
    const io = captureIo();
    expect(await run(['deploy', 'render'], io)).toBe(2);
    expect(io.err()).toContain('error USAGE_INVALID');
  });
});
