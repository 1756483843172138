import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Hoisting in an npm workspace lets a package import what only a sibling declares; that breaks as
// soon as the package is installed on its own. Every bare import in a workspace's shipped sources must
// be declared in its own package.json.

const root = fileURLToPath(new URL('../..', import.meta.url));
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    // Tests and the conformance suites (which only tests import) may use dev dependencies.
    const shipped = name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts');
    return shipped && !path.includes('/conformance/') ? [path] : [];
  });
}

function packageName(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('node:') || builtinModules.includes(specifier))
    return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]!}/${parts[1]!}` : parts[0];
}

const importPattern =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

describe('workspace manifests declare what their sources import', () => {
  it.each(rootManifest.workspaces)('%s', (workspace) => {
    const manifest = JSON.parse(readFileSync(join(root, workspace, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
    };
    const declared = new Set(Object.keys(manifest.dependencies ?? {}));
    const undeclared = new Set<string>();
    for (const file of sourceFiles(join(root, workspace, 'src'))) {
      for (const match of readFileSync(file, 'utf8').matchAll(importPattern)) {
        const name = packageName(match[1] ?? match[2] ?? match[3] ?? '.');
        if (name !== undefined && name !== manifest.name && !declared.has(name)) {
          undeclared.add(`${name} (${file.slice(root.length)})`);
        }
      }
    }
    expect([...undeclared], `add these to ${workspace}/package.json dependencies`).toEqual([]);
  });
});
