/**
 * The console's page hash: what an operator puts in the reference values and what the footer
 * shows. It covers every file the page is made of (index.html and everything under assets/), so
 * a changed byte anywhere changes it. Defined so coreutils reproduce it from a build:
 *
 *   cd apps/console/dist && find index.html assets -type f | LC_ALL=C sort | xargs sha256sum | sha256sum
 *
 * i.e. SHA-256 over the lines `<sha256 hex><two spaces><path>\n`, paths relative to the console
 * root with `/`, sorted by their UTF-16 code units (the same as C-locale byte order for ASCII names).
 * The gateway's console plugin computes the same value from the files it serves.
 */

/** The file every console build writes beside index.html: file digests and the page hash. */
export const PAGE_MANIFEST_FILE = 'console-manifest.json';

export interface PageManifest {
  readonly version: 1;
  /** Relative path -> lowercase hex SHA-256. */
  readonly files: Readonly<Record<string, string>>;
  readonly pageHash: string;
}

const HEX_64 = /^[0-9a-f]{64}$/;
const PAGE_PATH = /^(index\.html|assets\/[A-Za-z0-9._/-]+)$/;

/** Whether `path` is part of the page (index.html or a file under assets/). */
export function isPagePath(path: string): boolean {
  return PAGE_PATH.test(path) && !path.split('/').includes('..');
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes.slice().buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The page hash of a set of file digests (see the module comment). */
export async function pageHashOf(files: Readonly<Record<string, string>>): Promise<string> {
  const paths = Object.keys(files).sort();
  const lines = paths.map((p) => `${files[p] ?? ''}  ${p}\n`).join('');
  return sha256Hex(new TextEncoder().encode(lines));
}

/**
 * Parses a manifest as the page fetched it. Throws (a plain Error: the footer shows the message)
 * when it is not exactly the shape above.
 */
export function parsePageManifest(value: unknown): PageManifest {
  if (typeof value !== 'object' || value === null) throw new Error('the page manifest is not an object');
  const { version, files, pageHash } = value as Record<string, unknown>;
  if (version !== 1) throw new Error('the page manifest is not version 1');
  if (typeof pageHash !== 'string' || !HEX_64.test(pageHash))
    throw new Error('the page manifest has no page hash');
  if (typeof files !== 'object' || files === null || Array.isArray(files))
    throw new Error('the page manifest lists no files');
  const out: Record<string, string> = {};
  for (const [path, digest] of Object.entries(files as Record<string, unknown>)) {
    if (!isPagePath(path)) throw new Error(`the page manifest names a file outside the page: ${path}`);
    if (typeof digest !== 'string' || !HEX_64.test(digest))
      throw new Error(`the page manifest has no SHA-256 for ${path}`);
    out[path] = digest;
  }
  if (out['index.html'] === undefined) throw new Error('the page manifest does not cover index.html');
  return { version: 1, files: out, pageHash };
}
