import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consolePageHash } from '@tresor/gateway';
import { isPagePath, pageHashOf, parsePageManifest, sha256Hex } from './page-hash.js';

const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
const pagePath = fc.oneof(
  fc.constant('index.html'),
  fc
    .stringMatching(/^[A-Za-z0-9._-]{1,12}$/)
    .filter((s) => s !== '..' && s !== '.')
    .map((s) => `assets/${s}`),
);

describe('page hash', () => {
  it('is what the gateway computes for the same files', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(pagePath, hex, { maxKeys: 12 }), async (files) => {
        expect(await pageHashOf(files)).toBe(consolePageHash(files));
      }),
      { numRuns: 100 },
    );
  });

  it('is what coreutils print for a build directory (the documented recipe)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'console-hash-'));
    try {
      mkdirSync(join(dir, 'assets'));
      const files: Record<string, string> = {};
      for (const [path, text] of [
        ['index.html', '<!doctype html><title>t</title>\n'],
        ['assets/index-AbCd1234.js', 'console.log(1)\n'],
        ['assets/Z-last.css', 'a{}\n'],
        ['assets/a-first.css', 'b{}\n'],
      ] as const) {
        writeFileSync(join(dir, path), text);
        files[path] = await sha256Hex(new TextEncoder().encode(text));
      }
      const shell = execFileSync(
        'sh',
        ['-c', 'find index.html assets -type f | LC_ALL=C sort | xargs sha256sum | sha256sum'],
        { cwd: dir, encoding: 'utf8' },
      );
      expect(shell.split(' ')[0]).toBe(await pageHashOf(files));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('changes when any file changes', async () => {
    const a = { 'index.html': 'a'.repeat(64), 'assets/x.js': 'b'.repeat(64) };
    expect(await pageHashOf(a)).not.toBe(await pageHashOf({ ...a, 'assets/x.js': 'c'.repeat(64) }));
    expect(await pageHashOf(a)).not.toBe(await pageHashOf({ ...a, 'assets/y.js': 'b'.repeat(64) }));
  });
});

describe('parsePageManifest', () => {
  const good = { version: 1, pageHash: 'a'.repeat(64), files: { 'index.html': 'b'.repeat(64) } };
  it('accepts a manifest', () => {
    expect(parsePageManifest(good).files['index.html']).toBe('b'.repeat(64));
  });
  it.each([
    ['not an object', 'x'],
    ['another version', { ...good, version: 2 }],
    ['no page hash', { ...good, pageHash: undefined }],
    ['an upper-case hash', { ...good, pageHash: 'A'.repeat(64) }],
    ['no files', { ...good, files: [] }],
    ['no index.html', { ...good, files: { 'assets/a.js': 'b'.repeat(64) } }],
    ['a path outside the page', { ...good, files: { ...good.files, '../secret': 'b'.repeat(64) } }],
    ['a dot-dot path under assets', { ...good, files: { ...good.files, 'assets/../x': 'b'.repeat(64) } }],
    ['a short digest', { ...good, files: { 'index.html': 'b'.repeat(63) } }],
  ])('refuses %s', (_what, value) => {
    expect(() => parsePageManifest(value)).toThrow(/page manifest/);
  });
  it('knows what is part of the page', () => {
    expect(isPagePath('index.html')).toBe(true);
    expect(isPagePath('assets/index-1.js')).toBe(true);
    expect(isPagePath('console-manifest.json')).toBe(false);
    expect(isPagePath('console-config.json')).toBe(false);
    expect(isPagePath('/index.html')).toBe(false);
  });
});
