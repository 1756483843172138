import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CONSOLE_CSP,
  CONSOLE_MANIFEST_FILE,
  CONSOLE_PREFIX,
  consolePageHash,
  consolePlugin,
  consoleResponse,
  loadConsoleBuild,
} from './console-plugin.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const FILES: Record<string, string> = {
  'index.html': '<!doctype html><script type="module" src="./assets/index-AbCd1234.js"></script>',
  'assets/index-AbCd1234.js': 'export {};\n',
  'assets/index-EfGh5678.css': 'body{}\n',
};
const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A console build as `vite build` leaves it, with its manifest (optionally wrong). */
function writeBuild(
  files = FILES,
  edit?: (m: { pageHash: string; files: Record<string, string> }) => void,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'console-build-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'assets'));
  const digests: Record<string, string> = {};
  for (const [path, text] of Object.entries(files)) {
    writeFileSync(join(dir, path), text);
    digests[path] = sha(text);
  }
  const manifest = { version: 1, files: digests, pageHash: consolePageHash(digests) };
  edit?.(manifest);
  writeFileSync(join(dir, CONSOLE_MANIFEST_FILE), JSON.stringify(manifest));
  return dir;
}

async function app(dir: string) {
  const server = Fastify();
  await server.register(consolePlugin, { prefix: CONSOLE_PREFIX, build: await loadConsoleBuild(dir) });
  return server;
}

describe('console plugin', () => {
  it('serves the page at /console/ with the strict CSP and no caching of index.html', async () => {
    const server = await app(writeBuild());
    const res = await server.inject({ method: 'GET', url: '/console/' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(FILES['index.html']);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toContain('unsafe');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const same = await server.inject({ method: 'GET', url: '/console/index.html' });
    expect(same.body).toBe(res.body);
  });

  it('caches hashed assets for ever (immutable) with their own type', async () => {
    const server = await app(writeBuild());
    const js = await server.inject({ method: 'GET', url: '/console/assets/index-AbCd1234.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers.etag).toBe(`"${sha(FILES['assets/index-AbCd1234.js']!)}"`);
    const again = await server.inject({
      method: 'GET',
      url: '/console/assets/index-AbCd1234.js',
      headers: { 'if-none-match': js.headers.etag },
    });
    expect(again.statusCode).toBe(304);
  });

  it('redirects /console to /console/', async () => {
    const server = await app(writeBuild());
    const res = await server.inject({ method: 'GET', url: '/console' });
    expect(res.statusCode).toBe(308);
    expect(res.headers.location).toBe('/console/');
  });

  it.each([
    '/console/nope.js',
    '/console/assets/missing-12345678.js',
    '/console/assets/..%2f..%2fpackage.json',
    '/console/console-config.json',
  ])('answers 404 with a catalogue error for %s', async (url) => {
    const server = await app(writeBuild());
    const res = await server.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
  });

  it('computes the page hash over index.html and assets only (not the manifest)', async () => {
    const build = await loadConsoleBuild(writeBuild());
    const digests = Object.fromEntries(Object.entries(FILES).map(([p, t]) => [p, sha(t)]));
    expect(build.pageHash).toBe(consolePageHash(digests));
    expect(build.files.has(CONSOLE_MANIFEST_FILE)).toBe(true);
  });

  it('serves console-config.json only when given one (tresor console), never cached', () => {
    const build = { files: new Map(), pageHash: '' };
    const res = consoleResponse(build, 'console-config.json', { adminAudience: 'x' });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(consoleResponse(build, 'console-config.json').status).toBe(404);
  });
});

describe('console plugin: refuses builds it cannot vouch for', () => {
  it('a file changed after the build', async () => {
    const dir = writeBuild();
    writeFileSync(join(dir, 'assets/index-AbCd1234.js'), 'alert(1)\n');
    await expect(loadConsoleBuild(dir)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('a file added after the build', async () => {
    const dir = writeBuild();
    writeFileSync(join(dir, 'assets/extra-12345678.js'), 'x\n');
    await expect(loadConsoleBuild(dir)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('a manifest naming another page hash', async () => {
    const dir = writeBuild(FILES, (m) => {
      m.pageHash = '0'.repeat(64);
    });
    await expect(loadConsoleBuild(dir)).rejects.toThrow(/does not match/);
  });

  it('no manifest, no index.html, no directory', async () => {
    const noManifest = writeBuild();
    rmSync(join(noManifest, CONSOLE_MANIFEST_FILE));
    await expect(loadConsoleBuild(noManifest)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const { 'index.html': _i, ...rest } = FILES;
    await expect(loadConsoleBuild(writeBuild(rest))).rejects.toThrow(/no index.html/);
    await expect(loadConsoleBuild('/nonexistent/console')).rejects.toThrow(/cannot be read/);
  });
});
