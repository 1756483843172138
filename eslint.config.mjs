// @ts-check
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Workspace layers, lowest first (DESIGN.md §4). A layer may import only from layers before it. */
const packagesLayer = ['protocol', 'crypto', 'attestation', 'keystore', 'sdk', 'server-kit'];
const servicesLayer = ['trust', 'gateway', 'serving'];
const appsLayer = ['cli', 'console'];

const scoped = (names) => names.map((n) => `@tresor/${n}`);
const nodeBuiltins = {
  group: [
    'node:*',
    'fs',
    'fs/*',
    'path',
    'os',
    'crypto',
    'child_process',
    'net',
    'tls',
    'http',
    'https',
    'stream',
    'url',
    'buffer',
    'util',
    'zlib',
    'worker_threads',
  ],
  message:
    'This package must run in browsers: use WebCrypto and web streams, or a separate Node entry point.',
};
const restrict = (forbiddenPackages, { browser = false } = {}) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: [
        ...(forbiddenPackages.length > 0
          ? [
              {
                group: forbiddenPackages,
                message:
                  'Imports flow downwards only: protocol <- crypto <- attestation <- keystore/sdk/server-kit <- services <- apps (DESIGN.md §4).',
              },
            ]
          : []),
        {
          group: ['**/services/**', '**/apps/**', '../../packages/**'],
          message: 'Import other workspaces by their @tresor/* name, downwards only.',
        },
        ...(browser ? [nodeBuiltins] : []),
      ],
    },
  ],
});

export default defineConfig(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '**/*.tsbuildinfo', 'apps/cli/bin/**'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-definitions': 'off',
      'no-console': 'error',
      // Byte-level parsers index typed arrays constantly; noUncheckedIndexedAccess already makes
      // each such access an explicit, visible decision, so `!` is allowed.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  // Layering: each rule lists what a layer must not import.
  {
    files: ['packages/protocol/src/**'],
    rules: restrict(scoped([...packagesLayer, ...servicesLayer, ...appsLayer]), { browser: true }),
  },
  {
    files: ['packages/crypto/src/**'],
    rules: restrict(scoped([...packagesLayer.slice(2), ...servicesLayer, ...appsLayer]), { browser: true }),
  },
  {
    files: ['packages/sdk/src/**'],
    rules: restrict(scoped(['keystore', 'server-kit', ...servicesLayer, ...appsLayer]), { browser: true }),
  },
  {
    files: ['packages/attestation/src/**'],
    rules: restrict(scoped([...packagesLayer.slice(3), ...servicesLayer, ...appsLayer])),
  },
  {
    files: ['packages/keystore/src/**', 'packages/server-kit/src/**'],
    rules: restrict(scoped(['sdk', ...servicesLayer, ...appsLayer])),
  },
  { files: ['services/*/src/**'], rules: restrict(scoped(appsLayer)) },
  // Node entry points of browser packages and all tests may use Node.
  { files: ['packages/*/src/node/**', '**/*.test.ts'], rules: { 'no-restricted-imports': 'off' } },
  {
    files: ['**/*.test.ts', 'test/**', 'bench/**', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
  { files: ['**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
