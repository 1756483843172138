import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Plugin } from 'vite';
import {
  PAGE_MANIFEST_FILE,
  isPagePath,
  pageHashOf,
  sha256Hex,
  type PageManifest,
} from '../src/page-hash.js';

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) =>
      e.isDirectory() ? listFiles(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]),
    ),
  );
  return nested.flat();
}

/** After the build is written: digests of index.html and assets/*, and the page hash, into the manifest. */
export function pageManifestPlugin(): Plugin {
  let outDir = '';
  return {
    name: 'tresor-page-manifest',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir.startsWith('/')
        ? config.build.outDir
        : join(config.root, config.build.outDir);
    },
    async closeBundle() {
      const files: Record<string, string> = {};
      for (const file of await listFiles(outDir)) {
        const path = relative(outDir, file).split(sep).join('/');
        if (isPagePath(path)) files[path] = await sha256Hex(new Uint8Array(await readFile(file)));
      }
      const manifest: PageManifest = { version: 1, files, pageHash: await pageHashOf(files) };
      await writeFile(join(outDir, PAGE_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
      this.info(`page hash ${manifest.pageHash}`);
    },
  };
}
