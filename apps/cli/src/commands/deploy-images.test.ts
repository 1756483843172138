import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { captureIo } from '../../../../test/support/cli-io.js';
import { run } from '../index.js';

const DIGEST = (byte: string) => `sha256:${byte.repeat(32)}`;
const IMAGES = {
  trust: `ghcr.io/tresor/trust:0.1.0@${DIGEST('a1')}`,
  gateway: `ghcr.io/tresor/gateway:0.1.0@${DIGEST('b2')}`,
  serving: `ghcr.io/tresor/serving:0.1.0@${DIGEST('c3')}`,
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tresor-cli-images-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('tresor deploy render --images', () => {
  it('pins the digests of the images file, over the values file, in manifests and reference values', async () => {
    writeFileSync(join(dir, 'images.json'), JSON.stringify(IMAGES));
    writeFileSync(join(dir, 'values.yaml'), `gateway:\n  image: ghcr.io/acme/gateway:1@${DIGEST('99')}\n`);
    const io = captureIo();
    const out = join(dir, 'out');
    const args = ['deploy', 'render', '--out', out, '--values', join(dir, 'values.yaml')];
    expect(await run([...args, '--images', join(dir, 'images.json')], io)).toBe(0);
    expect(readFileSync(join(out, '40-gateway.yaml'), 'utf8')).toContain(`image: ${IMAGES.gateway}`);
    expect(readFileSync(join(out, '10-trust.yaml'), 'utf8')).toContain(`image: ${IMAGES.trust}`);
    const references = readFileSync(join(out, 'reference-values.json'), 'utf8');
    expect(references).toContain(DIGEST('c3'));
    expect(references).not.toContain(DIGEST('99'));
    expect(io.err()).not.toContain('trust.image is a placeholder');
    expect(io.err()).toContain('redis.image is a placeholder');
  });

  it('refuses an images file with an unpinned reference: exit 2, nothing written', async () => {
    writeFileSync(join(dir, 'images.json'), JSON.stringify({ trust: 'ghcr.io/tresor/trust:0.1.0' }));
    const io = captureIo();
    expect(
      await run(['deploy', 'render', '--out', join(dir, 'out'), '--images', join(dir, 'images.json')], io),
    ).toBe(2);
    expect(io.err()).toMatch(
      /^error CONFIG_INVALID: .*images\.json: trust: an image reference pinned by digest/,
    );
    expect(readdirSync(dir)).toEqual(['images.json']);
  });

  it('refuses a missing images file with exit 2 (INPUT_UNREADABLE)', async () => {
    const io = captureIo();
    expect(
      await run(['deploy', 'render', '--out', join(dir, 'out'), '--images', join(dir, 'nope.json')], io),
    ).toBe(2);
    expect(io.err()).toMatch(/^error INPUT_UNREADABLE: cannot read --images/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
