import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Resolves @tresor/* to their TypeScript sources, as vitest does, so the test needs no build. */
const workspaceSources: Plugin = {
  name: 'tresor-sources',
  setup(b) {
    b.onResolve({ filter: /^@tresor\/(protocol|crypto|attestation|sdk)$/ }, (args) => ({
      path: `${root}packages/${args.path.slice('@tresor/'.length)}/src/index.ts`,
    }));
  },
};

/** Bundles an entry for the browser platform with no Node polyfills; returns the output text. */
export async function bundleForBrowser(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    plugins: [workspaceSources],
  });
  return result.outputFiles.map((f) => f.text).join('\n');
}

describe('browser bundle', () => {
  it('bundles the sdk for browsers with no node: import and no Node built-in left', async () => {
    const code = await bundleForBrowser(`${root}packages/sdk/src/index.ts`);
    expect(code.length).toBeGreaterThan(10_000);
    expect(code).not.toMatch(/from\s*["']node:/);
    expect(code).not.toMatch(/require\(["'](node:)?(fs|crypto|https?|tls|net|stream|buffer|path|os)["']\)/);
    expect(code).not.toMatch(/import\(["']node:/);
    expect(code).toContain('tresor-receipt');
  });

  it('refuses to bundle the Node entry for browsers (it needs node:https)', async () => {
    await expect(bundleForBrowser(`${root}packages/sdk/src/node/index.ts`)).rejects.toThrow(/node:/);
  });
});
