import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';
import { pageManifestPlugin } from './build/page-manifest-plugin.js';

// The browser packages are bundled from their TypeScript sources (as vitest resolves them), so the
// console build needs no prior `tsc -b` and never picks up a Node entry point.
const source = (dir: string): string =>
  fileURLToPath(new URL(`../../packages/${dir}/src/index.ts`, import.meta.url));

export default defineConfig({
  // Relative asset URLs: the same build works at the gateway's /console/ and at `tresor console`'s /.
  base: './',
  plugins: [preact(), pageManifestPlugin()],
  resolve: {
    alias: [
      { find: /^@tresor\/protocol$/, replacement: source('protocol') },
      { find: /^@tresor\/crypto$/, replacement: source('crypto') },
      { find: /^@tresor\/attestation$/, replacement: source('attestation') },
      { find: /^@tresor\/sdk$/, replacement: source('sdk') },
    ],
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline scripts or styles: the gateway's CSP allows 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
    sourcemap: false,
  },
});
