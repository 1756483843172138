import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeOutputDirectory } from './write-output.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tresor-deploy-write-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const files = [
  { name: 'a.yaml', content: 'a: 1\n' },
  { name: 'reference-values.json', content: '{}\n' },
];

describe('writeOutputDirectory', () => {
  it('creates the directory (and its parents) with every file, leaving no staging directory', async () => {
    const out = join(root, 'nested', 'out');
    const written = await writeOutputDirectory(out, files, { force: false });
    expect(written).toEqual([join(out, 'a.yaml'), join(out, 'reference-values.json')]);
    expect(readFileSync(join(out, 'a.yaml'), 'utf8')).toBe('a: 1\n');
    expect(readdirSync(join(root, 'nested'))).toEqual(['out']);
  });

  it('writes into an existing empty directory', async () => {
    const out = join(root, 'empty');
    mkdirSync(out);
    await writeOutputDirectory(out, files, { force: false });
    expect(readdirSync(out).sort()).toEqual(['a.yaml', 'reference-values.json']);
  });

  it('refuses a non-empty directory without force and leaves it untouched', async () => {
    const out = join(root, 'full');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    await expect(writeOutputDirectory(out, files, { force: false })).rejects.toMatchObject({
      code: 'USAGE_INVALID',
      exit: 2,
    });
    expect(readdirSync(out)).toEqual(['keep.txt']);
    expect(readdirSync(root)).toEqual(['full']);
  });

  it('replaces the contents as a whole with force: no old file survives', async () => {
    const out = join(root, 'full');
    mkdirSync(out);
    writeFileSync(join(out, 'stale.yaml'), 'old');
    await writeOutputDirectory(out, files, { force: true });
    expect(readdirSync(out).sort()).toEqual(['a.yaml', 'reference-values.json']);
    expect(readdirSync(root)).toEqual(['full']);
  });

  it('refuses a file where the directory should be', async () => {
    const out = join(root, 'file');
    writeFileSync(out, 'x');
    await expect(writeOutputDirectory(out, files, { force: true })).rejects.toMatchObject({
      code: 'USAGE_INVALID',
    });
  });

  it('reports OUTPUT_UNWRITABLE and cleans up when a file cannot be written', async () => {
    const out = join(root, 'dup');
    // The same name twice: the second exclusive create fails half-way through staging.
    await expect(writeOutputDirectory(out, [files[0]!, files[0]!], { force: false })).rejects.toMatchObject({
      code: 'OUTPUT_UNWRITABLE',
    });
    expect(readdirSync(root)).toEqual([]);
  });

  it('refuses file names that would leave the directory', async () => {
    await expect(
      writeOutputDirectory(join(root, 'o'), [{ name: '../escape.yaml', content: '' }], { force: false }),
    ).rejects.toThrow(RangeError);
  });
});
