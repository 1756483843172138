import type { PageIntegrity } from './page-integrity.js';

/**
 * The console page against the signed reference values. A release of the console is a reference
 * value set of component `console` whose measurement `page_sha256` lists the page hash
 * (`tresor up` puts one for the build it serves; operators put theirs with
 * `tresor trust admin reference-values/put`). No TEE reports a measurement of that name, so such
 * a set can never match a workload's evidence: it only names released pages.
 */
export const CONSOLE_COMPONENT = 'console';
export const PAGE_HASH_MEASUREMENT = 'page_sha256';

/** What the page needs of a verified reference value set. */
export interface ReleaseSet {
  readonly component: string;
  readonly release: string;
  readonly measurements: Readonly<Record<string, readonly string[]>>;
}

export type PageReference =
  /** The hash of the files this browser fetched is a released console page. */
  | { readonly state: 'match'; readonly pageHash: string; readonly release: string }
  /** Console releases are listed, none with this hash (or a file differs from the build manifest). */
  | { readonly state: 'mismatch'; readonly pageHash: string; readonly released: readonly string[] }
  /** The signed reference values name no console release: nothing to compare with. */
  | { readonly state: 'unlisted'; readonly pageHash: string }
  /** Not decided yet: the page hash or the verified reference values are missing. */
  | { readonly state: 'pending'; readonly reason: string };

/**
 * Compares the page hash this browser computed with the console releases in the verified
 * reference values. `sets` must come from a document whose signature verified (the sdk hands
 * over an empty list otherwise, which reads `unlisted`: fail closed).
 */
export function comparePageWithReleases(
  integrity: PageIntegrity | null,
  sets: readonly ReleaseSet[] | null,
): PageReference {
  if (integrity === null) return { state: 'pending', reason: 'computing the page hash' };
  if (integrity.state === 'unknown') return { state: 'pending', reason: integrity.reason };
  if (sets === null) return { state: 'pending', reason: 'the gateway is not verified yet' };
  const consoles = sets.filter((s) => s.component === CONSOLE_COMPONENT);
  const released = [...new Set(consoles.flatMap((s) => s.measurements[PAGE_HASH_MEASUREMENT] ?? []))];
  const { pageHash } = integrity;
  if (consoles.length === 0) return { state: 'unlisted', pageHash };
  const hash = pageHash.toLowerCase();
  const match =
    integrity.state === 'ok'
      ? consoles.filter((s) => s.measurements[PAGE_HASH_MEASUREMENT]?.includes(hash)).at(-1)
      : undefined;
  return match === undefined
    ? { state: 'mismatch', pageHash, released }
    : { state: 'match', pageHash, release: match.release };
}
