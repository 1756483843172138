// @ts-check
/**
 * Import-direction rules (DESIGN.md §4): imports flow downwards only,
 * protocol <- crypto <- attestation <- keystore/sdk/server-kit <- services <- apps,
 * and the browser packages (protocol, crypto, attestation, sdk) never import Node built-ins outside `src/node/`.
 * Shared by eslint.config.mjs and test/unit/layering.test.ts, which proves the rules fire.
 */

const scoped = (/** @type {string[]} */ names) => names.map((n) => `@tresor/${n}`);
const services = ['trust', 'gateway', 'serving'];
const apps = ['cli', 'console'];

const nodeBuiltins = {
  // Anchored with '/': these are gitignore-style patterns, in which a bare 'crypto' would match any
  // path segment of that name, so '@tresor/crypto' too.
  group: [
    'node:*',
    '/fs',
    '/fs/*',
    '/path',
    '/os',
    '/crypto',
    '/child_process',
    '/net',
    '/tls',
    '/http',
    '/https',
    '/stream',
    '/url',
    '/buffer',
    '/util',
    '/zlib',
    '/worker_threads',
  ],
  message:
    'This package must run in browsers: use WebCrypto and web streams, or a Node entry point under src/node/.',
};

/** `no-restricted-imports` forbidding `packages` (by @tresor name) and, for browser code, Node built-ins. */
const restrict = (/** @type {string[]} */ packages, browser = false) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: [
        ...(packages.length > 0
          ? [
              {
                group: scoped(packages),
                message: 'Imports flow downwards only (DESIGN.md §4): this layer must not import that one.',
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

/** What each workspace must not import. */
const forbidden = {
  protocol: ['crypto', 'attestation', 'keystore', 'storage', 'sdk', 'server-kit', ...services, ...apps],
  crypto: ['attestation', 'keystore', 'storage', 'sdk', 'server-kit', ...services, ...apps],
  attestation: ['keystore', 'storage', 'sdk', 'server-kit', ...services, ...apps],
  keystore: ['storage', 'sdk', 'server-kit', ...services, ...apps],
  storage: ['sdk', 'server-kit', ...services, ...apps],
  'server-kit': ['keystore', 'storage', 'sdk', ...services, ...apps],
  sdk: ['keystore', 'storage', 'server-kit', ...services, ...apps],
};
const browserPackages = new Set(['protocol', 'crypto', 'attestation', 'sdk']);

export const layeringConfigs = [
  ...Object.entries(forbidden).flatMap(([name, packages]) => [
    { files: [`packages/${name}/src/**`], rules: restrict(packages, browserPackages.has(name)) },
    // A browser package's Node entry point may use Node built-ins, but still only import downwards.
    { files: [`packages/${name}/src/node/**`], rules: restrict(packages, false) },
  ]),
  { files: ['services/*/src/**'], rules: restrict(apps) },
  // Tests may reach anything they test against.
  { files: ['**/*.test.ts'], rules: { 'no-restricted-imports': 'off' } },
];
