import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { layeringConfigs } from '../../eslint.layers.mjs';

// Only the layering rules, with the TypeScript parser but without type information, so that any
// file path can be linted from a string.
const eslint = new ESLint({
  cwd: new URL('../..', import.meta.url).pathname,
  overrideConfigFile: true,
  overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...layeringConfigs],
});

async function violations(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('import direction (DESIGN.md §4) is enforced by lint', () => {
  const refused: [string, string][] = [
    ['packages/protocol/src/a.ts', "import { x } from '@tresor/crypto';"],
    ['packages/crypto/src/a.ts', "import { x } from '@tresor/attestation';"],
    ['packages/crypto/src/a.ts', "import { readFile } from 'node:fs';"],
    ['packages/crypto/src/a.ts', "import { createHash } from 'crypto';"],
    ['packages/sdk/src/a.ts', "import { x } from '@tresor/keystore';"],
    ['packages/sdk/src/a.ts', "import { x } from 'node:net';"],
    ['packages/attestation/src/a.ts', "import { x } from '@tresor/trust';"],
    ['packages/attestation/src/a.ts', "import { readFile } from 'node:fs';"],
    ['packages/attestation/src/node/a.ts', "import { x } from '@tresor/keystore';"],
    ['packages/keystore/src/a.ts', "import { x } from '@tresor/gateway';"],
    ['services/gateway/src/a.ts', "import { x } from '@tresor/cli';"],
    ['packages/crypto/src/node/a.ts', "import { x } from '@tresor/sdk';"],
    ['packages/crypto/src/a.ts', "import { x } from '../../../services/trust/src/index.js';"],
  ];
  it.each(refused)('%s: refuses %s', async (file, source) => {
    const found = await violations(file, source);
    expect(found.some((v) => v.startsWith('no-restricted-imports'))).toBe(true);
  });

  const allowed: [string, string][] = [
    ['packages/crypto/src/a.ts', "import { TresorError } from '@tresor/protocol';"],
    ['packages/crypto/src/node/a.ts', "import { createHash } from 'node:crypto';"],
    ['packages/attestation/src/node/a.ts', "import { verify } from 'node:crypto';"],
    ['packages/attestation/src/a.ts', "import { equalBytes } from '@tresor/crypto';"],
    ['services/gateway/src/a.ts', "import { x } from '@tresor/sdk';"],
    ['apps/cli/src/a.ts', "import { x } from '@tresor/trust';"],
  ];
  it.each(allowed)('%s: allows %s', async (file, source) => {
    expect(await violations(file, source)).toEqual([]);
  });
});
