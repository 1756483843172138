import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatBaseLock,
  formatImagesFile,
  parseBaseLock,
  parseImagesFile,
  withImages,
  type BasePackage,
} from './image-digests.js';
import { renderDeployment } from './render.js';
import { parseDeploymentValues, placeholderImages } from './values.js';

const HEX = (byte: string) => byte.repeat(32);
const TRUST = `ghcr.io/tresor/trust:0.1.0@sha256:${HEX('ab')}`;
const GATEWAY = `ghcr.io/tresor/gateway:0.1.0@sha256:${HEX('cd')}`;
const SERVING = `ghcr.io/tresor/serving:0.1.0@sha256:${HEX('ef')}`;

const pkg = fc.record({
  name: fc.stringMatching(/^[a-z0-9][a-z0-9+.-]{1,20}$/),
  version: fc.stringMatching(/^(?:[0-9]:)?[0-9][A-Za-z0-9.+~-]{0,15}$/),
  architecture: fc.constantFrom('all', 'amd64', 'arm64'),
  sha256: fc.stringMatching(/^[0-9a-f]{64}$/),
});

describe('base-packages.lock', () => {
  it('round-trips any set of packages, sorted by name', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(pkg, { selector: (p) => p.name, minLength: 1, maxLength: 30 }),
        (packages) => {
          const parsed = parseBaseLock(
            formatBaseLock({ sourceDateEpoch: 1_765_065_600, packages }, 'trixie'),
          );
          expect(parsed.sourceDateEpoch).toBe(1_765_065_600);
          expect(parsed.packages).toEqual(
            [...packages].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
          );
        },
      ),
    );
  });

  it('parses the committed lock: Node 20 from Debian, no shell, no package manager', () => {
    const { packages } = parseBaseLock(
      readFileSync(join(import.meta.dirname, '../images/base-packages.lock'), 'utf8'),
    );
    const names = packages.map((p: BasePackage) => p.name);
    expect(packages.find((p) => p.name === 'nodejs')?.version).toMatch(/^20\./);
    for (const absent of ['bash', 'dash', 'coreutils', 'dpkg', 'apt', 'perl-base'])
      expect(names).not.toContain(absent);
  });

  it.each([
    ['a line with three fields', `nodejs 20.19.2 amd64\n`],
    ['a line with five fields', `nodejs 20.19.2 amd64 ${HEX('aa')} extra\n`],
    ['an upper-case package name', `NodeJS 20.19.2 amd64 ${HEX('aa')}\n`],
    ['an unknown architecture', `nodejs 20.19.2 i386 ${HEX('aa')}\n`],
    ['a short hash', `nodejs 20.19.2 amd64 abc\n`],
    ['a version with a space-free shell injection', `nodejs 20;rm amd64 ${HEX('aa')}\n`],
    ['a second epoch line', `source-date-epoch 2\n`],
    ['an epoch that is not a number', `source-date-epoch soon\n`],
    ['a base image digest that is not sha256', `base-image md5:${HEX('ab').slice(0, 32)}\n`],
  ])('refuses %s', (_what, text) => {
    expect(() => parseBaseLock(`source-date-epoch 1\n${text}`)).toThrow(
      /base-packages\.lock line 2: expected/,
    );
  });

  it('keeps the base image digest when there is one', () => {
    const lock = {
      sourceDateEpoch: 7,
      baseImage: `sha256:${HEX('5e')}`,
      packages: [{ name: 'nodejs', version: '20.19.2', architecture: 'amd64', sha256: HEX('aa') }],
    };
    expect(parseBaseLock(formatBaseLock(lock, 'trixie'))).toEqual(lock);
  });

  it('refuses a package listed twice', () => {
    const line = `nodejs 20.19.2 amd64 ${HEX('aa')}`;
    expect(() => parseBaseLock(`source-date-epoch 1\n${line}\n${line}\n`)).toThrow(
      /line 3: nodejs is listed twice/,
    );
  });

  it('refuses a lock without its source-date-epoch', () => {
    expect(() => parseBaseLock(`nodejs 20.19.2 amd64 ${HEX('aa')}\n`)).toThrow(/no "source-date-epoch/);
  });

  it('refuses a lock with only comments', () => {
    expect(() => parseBaseLock('# nothing\nsource-date-epoch 1\n')).toThrow(/lists no package/);
  });
});

describe('images file', () => {
  it('round-trips what the build writes', () => {
    const images = { trust: TRUST, gateway: GATEWAY, serving: SERVING };
    expect(parseImagesFile(formatImagesFile(images), 'images.json')).toEqual(images);
  });

  it.each([
    ['text that is not JSON', 'trust: x', /not JSON/],
    ['an empty object', '{}', /at least one of trust, gateway, serving/],
    [
      'an image pinned by tag only',
      JSON.stringify({ trust: 'ghcr.io/tresor/trust:0.1.0' }),
      /trust: an image reference pinned by digest/,
    ],
    [
      'the tag latest',
      JSON.stringify({ gateway: `ghcr.io/tresor/gateway:latest@sha256:${HEX('ab')}` }),
      /gateway: the tag "latest"/,
    ],
    ['an unknown service', JSON.stringify({ redis: TRUST }), /unrecognized key/i],
    ['an array', JSON.stringify([TRUST]), /\(top level\)/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseImagesFile(text, 'images.json')).toThrow(message);
  });

  it('refuses a file larger than 64 KiB', () => {
    expect(() => parseImagesFile(' '.repeat(65 * 1024), 'images.json')).toThrow(/larger than/);
  });

  it('pins the built images in the rendered manifests and reference values', () => {
    const values = withImages(parseDeploymentValues({}), {
      trust: TRUST,
      gateway: GATEWAY,
      serving: SERVING,
    });
    expect(placeholderImages(values)).toEqual(['redis.image']);
    const rendered = renderDeployment(values);
    const yaml = rendered.files.map((f) => f.yaml).join('\n');
    for (const ref of [TRUST, GATEWAY, SERVING]) expect(yaml).toContain(`image: ${ref}`);
    const digests = rendered.referenceValues.referenceValues.flatMap((r) => r.imageDigests);
    expect(digests).toEqual(
      expect.arrayContaining([`sha256:${HEX('ab')}`, `sha256:${HEX('cd')}`, `sha256:${HEX('ef')}`]),
    );
    expect(Object.isFrozen(values.trust)).toBe(true);
  });

  it('leaves the images the file does not name as the values had them', () => {
    const base = parseDeploymentValues({ gateway: { image: GATEWAY.replace('cd', '12') } });
    const values = withImages(base, { trust: TRUST });
    expect(values.trust.image).toBe(TRUST);
    expect(values.gateway.image).toBe(base.gateway.image);
  });
});
