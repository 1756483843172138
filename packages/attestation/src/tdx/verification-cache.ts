import type { Certificate } from '../certs.js';
import { BoundedCache, bytesKey } from './bounded-cache.js';
import { parseTdxCollateral } from './collateral.js';
import { examineCollateral, type CollateralExamination } from './collateral-examination.js';
import { importRawP256Key } from './ecdsa-p256.js';
import { isPinnedIntelRoot } from './intel-root.js';
import { examinePckChain, type PckChainExamination } from './pck-chain.js';

/**
 * What a TDX verifier keeps between calls: examined PCK chains (parsed, signatures checked, PCK key
 * imported), examined collateral files (Intel's signatures and issuer chains checked), imported
 * attestation keys, and the verdict on a supplied root. Every entry is keyed by the exact input
 * bytes and holds only time-independent results, so a changed byte is a new entry and validity,
 * nextUpdate and CRL currency are still judged at each call's `now`. Quotes from one platform share
 * their PCK chain and usually their attestation key, so a warm cache leaves two ECDSA verifies per
 * quote.
 */
export class TdxVerificationCache {
  readonly #pckChains: BoundedCache<Promise<PckChainExamination>>;
  readonly #collateral: BoundedCache<Promise<CollateralExamination>>;
  readonly #attestationKeys: BoundedCache<Promise<CryptoKey | undefined>>;
  readonly #suppliedRoots: BoundedCache<boolean>;

  /** `maxEntries` per kind of entry; 0 keeps nothing (every call does all the work). */
  constructor(maxEntries = 64) {
    this.#pckChains = new BoundedCache(maxEntries);
    this.#collateral = new BoundedCache(maxEntries);
    this.#attestationKeys = new BoundedCache(maxEntries);
    this.#suppliedRoots = new BoundedCache(Math.min(maxEntries, 4));
  }

  pckChain(pem: Uint8Array, root: Certificate): Promise<PckChainExamination> {
    return remember(this.#pckChains, bytesKey(pem), () => examinePckChain(pem, root));
  }

  /** Throws INPUT_MALFORMED (synchronously, nothing cached) when the collateral file is not in its format. */
  collateral(collateral: Uint8Array, root: Certificate): Promise<CollateralExamination> {
    return remember(this.#collateral, bytesKey(collateral), () =>
      examineCollateral(parseTdxCollateral(collateral), root),
    );
  }

  attestationKey(xy: Uint8Array): Promise<CryptoKey | undefined> {
    return remember(this.#attestationKeys, bytesKey(xy), () => importRawP256Key(xy));
  }

  /** Throws INPUT_MALFORMED when `supplied` is not a certificate. */
  isPinnedRoot(supplied: Uint8Array): boolean {
    return this.#suppliedRoots.getOrCreate(bytesKey(supplied), () => isPinnedIntelRoot(supplied));
  }
}

/** Memoises a promise; a rejected one is dropped so a transient failure is never remembered. */
function remember<V>(cache: BoundedCache<Promise<V>>, key: string, create: () => Promise<V>): Promise<V> {
  return cache.getOrCreate(key, () => {
    const entry = create();
    entry.catch(() => {
      cache.delete(key);
    });
    return entry;
  });
}
