import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import workspace packages from their TypeScript sources, so `npm test` needs no build step
// for the packages themselves (the CLI end-to-end tests run the built `tresor` bin).
const workspaces: Record<string, string> = {
  protocol: 'packages/protocol',
  crypto: 'packages/crypto',
  attestation: 'packages/attestation',
  keystore: 'packages/keystore',
  storage: 'packages/storage',
  'server-kit': 'packages/server-kit',
  sdk: 'packages/sdk',
  trust: 'services/trust',
  serving: 'services/serving',
  gateway: 'services/gateway',
  deploy: 'deploy',
  cli: 'apps/cli',
};
const alias = [
  // Subpath entry points (Node-only code of browser packages) map to their own sources.
  {
    find: /^@tresor\/crypto\/node$/,
    replacement: fileURLToPath(new URL('./packages/crypto/src/node/index.ts', import.meta.url)),
  },
  {
    find: /^@tresor\/sdk\/node$/,
    replacement: fileURLToPath(new URL('./packages/sdk/src/node/index.ts', import.meta.url)),
  },
  {
    find: /^@tresor\/attestation\/node$/,
    replacement: fileURLToPath(new URL('./packages/attestation/src/node/index.ts', import.meta.url)),
  },
  ...Object.entries(workspaces).map(([name, dir]) => ({
    find: new RegExp(`^@tresor/${name}$`),
    replacement: fileURLToPath(new URL(`./${dir}/src/index.ts`, import.meta.url)),
  })),
];

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [
            'packages/*/src/**/*.test.ts',
            'services/*/src/**/*.test.ts',
            'apps/*/src/**/*.test.ts',
            'deploy/src/**/*.test.ts',
            'test/unit/**/*.test.ts',
          ],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'security',
          include: ['test/security/**/*.test.ts', 'test/reliability/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
