import { PAGE_MANIFEST_FILE, pageHashOf, parsePageManifest, sha256Hex } from './page-hash.js';

export type PageIntegrity =
  | { readonly state: 'ok'; readonly pageHash: string; readonly files: number }
  | { readonly state: 'mismatch'; readonly pageHash: string; readonly file: string }
  | { readonly state: 'unknown'; readonly reason: string };

/**
 * Recomputes the page hash from the bytes this browser fetched (index.html and every asset the
 * build manifest lists) and compares each file. The footer shows the computed hash, to compare with
 * the reference values; a page cannot vouch for itself, so this is a check to compare, not a proof.
 */
export async function checkPageIntegrity(pageUrl: string): Promise<PageIntegrity> {
  try {
    const base = new URL('./', pageUrl);
    const res = await fetch(new URL(PAGE_MANIFEST_FILE, base), { cache: 'no-store' });
    if (!res.ok) return { state: 'unknown', reason: `no ${PAGE_MANIFEST_FILE} (${res.status})` };
    const manifest = parsePageManifest(await res.json());
    const computed: Record<string, string> = {};
    for (const path of Object.keys(manifest.files)) {
      const file = await fetch(new URL(path, base));
      computed[path] = await sha256Hex(new Uint8Array(await file.arrayBuffer()));
      if (computed[path] !== manifest.files[path]) {
        return { state: 'mismatch', pageHash: await pageHashOf(computed), file: path };
      }
    }
    const pageHash = await pageHashOf(computed);
    return pageHash === manifest.pageHash
      ? { state: 'ok', pageHash, files: Object.keys(computed).length }
      : { state: 'mismatch', pageHash, file: PAGE_MANIFEST_FILE };
  } catch (err) {
    return { state: 'unknown', reason: err instanceof Error ? err.message : 'unreadable' };
  }
}
