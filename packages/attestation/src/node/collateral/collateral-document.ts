import type { CollateralDirectory } from './collateral-directory.js';
import { isValidAt, type DocumentValidity } from './document-validity.js';
import type { ResolvedFetchOptions } from './fetch-options.js';
import { httpGetDocument, type HttpDocument } from './http-get.js';

/** The `tresor attest verify` input a fetched file is for (`rim`: not read by the verifier yet). */
export type CollateralFileRole = 'signer_cert' | 'ca_chain' | 'crl' | 'collateral' | 'rim';

/** A GET with the fetcher's timeouts, retries and size limit. */
export type CollateralGet = (url: string, what: string) => Promise<HttpDocument>;

/** One file of collateral: where it comes from, what it is called on disk, how to read its validity. */
export interface CollateralDocument {
  readonly role: CollateralFileRole;
  /** Names it in messages, e.g. "VCEK (Genoa)". */
  readonly what: string;
  /** Derived from the request, so different chips, TCBs or FMSPCs never share a file. */
  readonly fileName: string;
  /** The URL it is fetched from (the first one, where a file is assembled from several responses). */
  readonly url: string;
  /** Fetches and checks the document; returns the file's bytes. Throws COLLATERAL_* codes. */
  download(get: CollateralGet): Promise<Uint8Array>;
  /** The validity the file states; undefined when it is not such a document or states no end. */
  validity(file: Uint8Array): DocumentValidity | undefined;
}

export interface FetchedCollateralFile {
  readonly role: CollateralFileRole;
  readonly path: string;
  readonly source: 'network' | 'cache';
  readonly url: string;
  /** End of the document's own validity; null when it states none. */
  readonly validUntil: Date | null;
  /**
   * False when the validity it states does not include the time of the fetch: a service (or a
   * mirror) served a document already past its nextUpdate, which a verification now would refuse.
   */
  readonly current: boolean;
}

/** What one fetch produced: the files, in the order `tresor attest verify` takes them, and notes. */
export interface FetchedCollateral {
  readonly tee: 'snp' | 'tdx' | 'nvidia';
  readonly files: readonly FetchedCollateralFile[];
  /** What the caller must know or do itself (a VLEK to get from the cloud provider, a stale document). */
  readonly notes: readonly string[];
}

/** Notes for files a service served already outside their validity. */
export function staleNotes(files: readonly FetchedCollateralFile[]): string[] {
  return files
    .filter((f) => !f.current)
    .map(
      (f) =>
        `${f.path} was served outside its own validity${f.validUntil === null ? '' : ` (valid until ${f.validUntil.toISOString()})`}; verification now will refuse it`,
    );
}

/**
 * The document from the directory when a copy there is valid now (and no refresh was asked for),
 * else from the network, written to the directory.
 */
export async function obtainDocument(
  document: CollateralDocument,
  directory: CollateralDirectory,
  options: ResolvedFetchOptions,
): Promise<FetchedCollateralFile> {
  const now = options.now();
  const path = directory.pathOf(document.fileName);
  if (!options.refresh) {
    const cached = await directory.read(document.fileName);
    const validity = cached === undefined ? undefined : document.validity(cached);
    if (isValidAt(validity, now)) {
      options.onProgress({ type: 'cached', what: document.what, path });
      return described(document, path, 'cache', validity, true);
    }
  }
  const get: CollateralGet = (url, what) => httpGetDocument(url, what, options);
  const bytes = await document.download(get);
  const validity = document.validity(bytes);
  const written = await directory.write(document.fileName, bytes);
  options.onProgress({ type: 'written', what: document.what, path: written });
  return described(
    document,
    written,
    'network',
    validity,
    validity === undefined || isValidAt(validity, now),
  );
}

function described(
  document: CollateralDocument,
  path: string,
  source: 'network' | 'cache',
  validity: DocumentValidity | undefined,
  current: boolean,
): FetchedCollateralFile {
  return {
    role: document.role,
    path,
    source,
    url: document.url,
    validUntil: validity?.until ?? null,
    current,
  };
}
