import { request as httpsRequest } from 'node:https';
import type { JSONWebKeySet } from 'jose';
import { TresorError } from '@tresor/protocol';
import {
  verifyReferenceValuesDocument,
  verifyResidencyInventoryDocument,
  type ReferenceValues,
  type ResidencyInventory,
} from '@tresor/attestation';

/** The trust service's signed documents as the gateway last fetched and verified them. */
export interface TrustDocuments {
  /** Compact JWS, served to clients unchanged in the attestation bundle. */
  readonly referenceValuesJws: string;
  readonly residencyInventoryJws: string;
  readonly referenceValues: ReferenceValues;
  readonly inventory: ResidencyInventory;
}

/** Where the gateway gets the documents; the trust service over HTTPS in deployments. */
export interface TrustDocumentSource {
  current(): Promise<TrustDocuments>;
}

const MAX_BYTES = 4 * 1024 * 1024;

function get(url: URL, ca: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const unreachable = (cause: unknown): void => {
      reject(
        new TresorError('TRUST_SERVICE_UNREACHABLE', `cannot fetch ${url.pathname} from the trust service`, {
          cause,
        }),
      );
    };
    const req = httpsRequest(
      url,
      { method: 'GET', minVersion: 'TLSv1.3', timeout: 10_000, ...(ca === undefined ? {} : { ca }) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BYTES) {
            res.destroy();
            unreachable(new Error('answer too large'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (res.statusCode !== 200) {
            unreachable(new Error(`HTTP ${String(res.statusCode)}`));
            return;
          }
          resolve(Buffer.concat(chunks).toString('utf8').trim());
        });
        res.on('error', unreachable);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', unreachable);
    req.end();
  });
}

/**
 * Fetches `/trust/v0/reference-values`, `/trust/v0/residency-inventory` and `/trust/v0/document-keys`
 * from the trust service (its TLS certificate pinned by `ca`), verifies both documents and keeps them
 * for `refreshMs`. A refresh that fails keeps the documents verified before (they stay signed and
 * clients check them themselves) and retries on the next call; with none verified yet it throws.
 */
export class HttpsTrustDocumentSource implements TrustDocumentSource {
  readonly #base: URL;
  readonly #ca: string | undefined;
  readonly #refreshMs: number;
  readonly #now: () => number;
  #cached: { documents: TrustDocuments; at: number } | undefined;
  #inflight: Promise<TrustDocuments> | undefined;

  constructor(url: string, ca: string | undefined, now: () => number, refreshMs = 30_000) {
    this.#base = new URL(url);
    this.#ca = ca;
    this.#now = now;
    this.#refreshMs = refreshMs;
  }

  async current(): Promise<TrustDocuments> {
    const cached = this.#cached;
    if (cached !== undefined && this.#now() - cached.at < this.#refreshMs) return cached.documents;
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = undefined;
    });
    try {
      return await this.#inflight;
    } catch (err) {
      if (cached !== undefined) return cached.documents;
      throw err;
    }
  }

  async #fetch(): Promise<TrustDocuments> {
    const at = (path: string): URL => new URL(path, this.#base);
    const [rv, inv, keysText] = await Promise.all([
      get(at('/trust/v0/reference-values'), this.#ca),
      get(at('/trust/v0/residency-inventory'), this.#ca),
      get(at('/trust/v0/document-keys'), this.#ca),
    ]);
    let keys: JSONWebKeySet;
    try {
      keys = JSON.parse(keysText) as JSONWebKeySet;
    } catch (cause) {
      throw new TresorError('TRUST_SERVICE_UNREACHABLE', 'the trust service document keys are not JSON', {
        cause,
      });
    }
    const referenceValues = await verifyReferenceValuesDocument(rv, { keys });
    const inventory = await verifyResidencyInventoryDocument(inv, { keys });
    const documents: TrustDocuments = {
      referenceValuesJws: rv,
      residencyInventoryJws: inv,
      referenceValues: referenceValues.body,
      inventory: inventory.body,
    };
    this.#cached = { documents, at: this.#now() };
    return documents;
  }
}
