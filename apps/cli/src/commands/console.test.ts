import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CONSOLE_CSP, consolePageHash } from '@tresor/gateway';
import { captureIo } from '../../../../test/support/cli-io.js';
import { run } from '../program.js';
import { consoleCommands } from './console.js';
import { relayTarget, startConsoleServer, type RunningConsole } from './console-server.js';

const dirs: string[] = [];
const servers: RunningConsole[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function emptyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'console-empty-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'readme.txt'), 'not a console build');
  return dir;
}

function build(): string {
  const dir = mkdtempSync(join(tmpdir(), 'console-dist-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'assets'));
  const files = { 'index.html': '<!doctype html><p>console</p>', 'assets/index-AbCd1234.js': 'export {};' };
  const digests: Record<string, string> = {};
  for (const [path, text] of Object.entries(files)) {
    writeFileSync(join(dir, path), text);
    digests[path] = createHash('sha256').update(text).digest('hex');
  }
  writeFileSync(
    join(dir, 'console-manifest.json'),
    JSON.stringify({ version: 1, files: digests, pageHash: consolePageHash(digests) }),
  );
  return dir;
}

describe('relayTarget: what tresor console passes on to the gateway', () => {
  it.each([
    ['GET', '/.well-known/tresor/attestation?nonce=ab', '/.well-known/tresor/attestation?nonce=ab'],
    ['GET', '/.well-known/ohttp-gateway', '/.well-known/ohttp-gateway'],
    ['POST', '/v1/ohttp', '/v1/ohttp'],
    ['POST', '/admin/v0/api-keys/create', '/admin/v0/api-keys/create'],
  ])('%s %s is relayed', (method, url, target) => {
    expect(relayTarget(method, url)).toBe(target);
  });

  it.each([
    ['POST', '/v1/chat/completions'], // plaintext model API: never relayed
    ['GET', '/v1/models'],
    ['GET', '/v1/ohttp'],
    ['POST', '/v1/ohttp?x=1'],
    ['GET', '/admin/v0/tenants/list'],
    ['POST', '/admin/v0/'],
    ['POST', '/admin/v0/../../etc/passwd'],
    ['POST', '/admin/v0/tenants/list?debug=1'],
    ['POST', '/.well-known/tresor/attestation'],
    ['GET', '/readyz'],
    ['GET', '/metrics'],
    ['GET', '/'],
  ])('%s %s is not relayed', (method, url) => {
    expect(relayTarget(method, url)).toBeUndefined();
  });
});

describe('startConsoleServer', () => {
  it('serves the build with the gateway’s headers and the policy in console-config.json', async () => {
    const server = await startConsoleServer({
      gateway: 'https://127.0.0.1:1',
      listen: '127.0.0.1:0',
      dist: build(),
      policy: { version: 1 },
      adminAudience: 'aud-1',
    });
    servers.push(server);
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(await page.text()).toContain('console');
    const config = (await (await fetch(new URL('console-config.json', server.url))).json()) as Record<
      string,
      unknown
    >;
    expect(config).toEqual({
      policy: { version: 1 },
      adminAudience: 'aud-1',
      upstream: 'https://127.0.0.1:1',
    });
    const missing = await fetch(new URL('nope.js', server.url));
    expect(missing.status).toBe(404);
    const post = await fetch(new URL('v1/chat/completions', server.url), { method: 'POST', body: '{}' });
    expect(post.status).toBe(404);
  });

  it('answers GATEWAY_UNREACHABLE when the gateway is down, for a relayed path', async () => {
    const server = await startConsoleServer({
      gateway: 'https://127.0.0.1:1',
      listen: '127.0.0.1:0',
      dist: build(),
      policy: {},
      adminAudience: 'a',
    });
    servers.push(server);
    const res = await fetch(new URL('.well-known/ohttp-gateway', server.url));
    expect(res.status).toBe(502);
    expect(((await res.json()) as { code: string }).code).toBe('GATEWAY_UNREACHABLE');
  });

  it('refuses a non-loopback listen address', async () => {
    await expect(
      startConsoleServer({
        gateway: 'https://g',
        listen: '0.0.0.0:0',
        dist: build(),
        policy: {},
        adminAudience: 'a',
      }),
    ).rejects.toMatchObject({ code: 'PROXY_BIND_REFUSED' });
  });

  it('refuses a directory that is not a console build', async () => {
    await expect(
      startConsoleServer({
        gateway: 'https://g',
        listen: '127.0.0.1:0',
        dist: emptyDir(),
        policy: {},
        adminAudience: 'a',
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('tresor console', () => {
  it('exits 2 naming the file when the policy cannot be read', async () => {
    const io = captureIo();
    const code = await run(
      ['console', '--gateway', 'https://g', '--policy', '/nonexistent/policy.json'],
      io,
      [consoleCommands],
    );
    expect(code).toBe(2);
    expect(io.err()).toMatch(/INPUT_UNREADABLE/);
  });

  it('exits 2 for a policy that is not a trust policy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'console-policy-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'p.json'), '{"version": 99}');
    const io = captureIo();
    const code = await run(['console', '--gateway', 'https://g', '--policy', join(dir, 'p.json')], io, [
      consoleCommands,
    ]);
    expect(code).toBe(2);
    expect(io.err()).toMatch(/TRUST_POLICY_INVALID/);
  });

  it('exits 2 without --gateway', async () => {
    const io = captureIo();
    expect(await run(['console'], io, [consoleCommands])).toBe(2);
  });
});
