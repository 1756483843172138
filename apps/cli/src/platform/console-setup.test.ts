import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { matchReferenceValues, parseReferenceValueSet } from '@tresor/attestation';
import { consolePageHash } from '@tresor/gateway';
import { stateLayout } from './layout.js';
import { renderReady } from './platform.js';
import {
  consoleLink,
  findConsoleBuild,
  PAGE_HASH_MEASUREMENT,
  putConsoleReferenceValues,
} from './console-setup.js';
import type { TrustAdmin } from './provision-trust.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

async function build(edit?: (files: Record<string, string>) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'console-setup-'));
  dirs.push(dir);
  await mkdir(join(dir, 'assets'));
  const files: Record<string, string> = {
    'index.html': '<!doctype html><script type="module" src="./assets/index-AbCd1234.js"></script>',
    'assets/index-AbCd1234.js': 'export {};\n',
  };
  const digests = Object.fromEntries(Object.entries(files).map(([p, t]) => [p, sha(t)]));
  const manifest = { version: 1, files: digests, pageHash: consolePageHash(digests) };
  edit?.(files);
  for (const [path, text] of Object.entries(files)) await writeFile(join(dir, path), text);
  await writeFile(join(dir, 'console-manifest.json'), JSON.stringify(manifest));
  return dir;
}

describe('findConsoleBuild', () => {
  it('loads a build and its page hash', async () => {
    const dir = await build();
    const found = await findConsoleBuild(dir);
    expect(found?.pageHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('answers undefined where nothing was built', async () => {
    expect(await findConsoleBuild(join(tmpdir(), 'no-such-console-build-xyz'))).toBeUndefined();
  });

  it('refuses a build whose files differ from its manifest', async () => {
    const dir = await build((files) => {
      files['assets/index-AbCd1234.js'] = 'alert(1);\n';
    });
    await expect(findConsoleBuild(dir)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('refuses a build without its manifest', async () => {
    const dir = await build();
    await rm(join(dir, 'console-manifest.json'));
    await expect(findConsoleBuild(dir)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

describe('putConsoleReferenceValues', () => {
  it('puts a set the trust service parses, which no workload can match', async () => {
    const calls: [string, unknown][] = [];
    const admin: TrustAdmin = {
      call: (operation, request) => {
        calls.push([operation, request]);
        return Promise.resolve({ version: 2 });
      },
    };
    const hash = 'ab'.repeat(32);
    await putConsoleReferenceValues(admin, hash);
    expect(calls).toHaveLength(1);
    expect(calls[0]![0]).toBe('reference-values/put');
    const set = parseReferenceValueSet(calls[0]![1]);
    expect(set).toMatchObject({ component: 'console', release: 'local-abababababab', tee: 'sample' });
    expect(set.measurements[PAGE_HASH_MEASUREMENT]).toEqual([hash]);
    // A sample workload reports `measurement`, never `page_sha256`: even with the same value it is no console.
    expect(matchReferenceValues([set], { tee: 'sample', measurements: { measurement: hash } })).toEqual([]);
  });
});

describe('consoleLink', () => {
  it('carries the policy (base64url JSON) and the audience in the fragment, nothing in the query', () => {
    const policy = { version: 1, trustServiceKeys: [{ jwk: { kty: 'EC', x: 'a+b/c' } }] };
    const url = new URL(consoleLink('https://127.0.0.1:8444', policy, 'tresor-local-gateway'));
    expect(url.origin + url.pathname).toBe('https://127.0.0.1:8444/console/');
    expect(url.search).toBe('');
    const params = new URLSearchParams(url.hash.slice(1));
    expect(JSON.parse(Buffer.from(params.get('policy')!, 'base64url').toString('utf8'))).toEqual(policy);
    expect(params.get('aud')).toBe('tresor-local-gateway');
  });
});

describe('renderReady with the console', () => {
  const facts = {
    gatewayUrl: 'https://127.0.0.1:8444',
    trustUrl: 'https://127.0.0.1:8445',
    apiKey: 'tr_example',
    caCertFile: '/x/.tresor/tls/ca.pem',
    policyFile: '/x/.tresor/tresor-policy.json',
    model: 'tresor-demo',
  };
  const layout = stateLayout('.tresor', '/x');

  it('prints the console link before the ready line', () => {
    const link = 'https://127.0.0.1:8444/console/#policy=e30&aud=tresor-local-gateway';
    const text = renderReady({ ...facts, consoleUrl: link }, layout, '/x', '1 s');
    expect(text).toContain(`    ${link}\n`);
    expect(text.trimEnd().split('\n').at(-1)).toBe('Tresor is ready: https://127.0.0.1:8444');
  });

  it('says how to build the console when there is none', () => {
    const text = renderReady(facts, layout, '/x', '1 s');
    expect(text).toContain('npm run build -w apps/console');
    expect(text).not.toContain('/console/');
  });
});
