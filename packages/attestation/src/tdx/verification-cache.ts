import type { Certificate } from '../certs.js';
import { ContentCache } from '../content-cache.js';
import type { SignatureVerifier, VerificationKey } from '../signatures/index.js';
import { parseTdxCollateral } from './collateral.js';
import { examineCollateral, type CollateralExamination } from './collateral-examination.js';
import { importRawP256Key } from './ecdsa-p256.js';
import { isPinnedIntelRoot } from './intel-root.js';
import { examinePckChain, type PckChainExamination } from './pck-chain.js';
import { qeReportDataBindsAttestationKey } from './quote-checks.js';
import type { TdxQuote } from './quote.js';

/** The entries of one SignatureVerifier: imported keys and verdicts are that implementation's own. */
interface Examinations {
  readonly pckChains: ContentCache<Promise<PckChainExamination>>;
  readonly collateral: ContentCache<Promise<CollateralExamination>>;
  readonly attestationKeys: ContentCache<Promise<VerificationKey | undefined>>;
}

/**
 * What a TDX verifier keeps between calls: examined PCK chains (parsed, signatures checked, PCK key
 * imported, QE report signatures checked), examined collateral files (Intel's signatures and issuer
 * chains checked), imported attestation keys, and the verdict on a supplied root. Every entry is
 * keyed by the exact input bytes (ContentCache) and holds only time-independent results, so a
 * changed byte is a new entry and validity, nextUpdate and CRL currency are still judged at each
 * call's `now`. Quotes from one platform share their PCK chain, QE report and usually their
 * attestation key, so a warm cache leaves one ECDSA verify per quote: the quote's own signature.
 * Verifiers with different SignatureVerifiers may share a cache; their entries are kept apart.
 */
export class TdxVerificationCache {
  readonly #maxEntries: number;
  readonly #bySignatures = new WeakMap<SignatureVerifier, Examinations>();
  readonly #suppliedRoots: ContentCache<boolean>;
  readonly #keyBindings: ContentCache<boolean>;

  /** `maxEntries` per kind of entry; 0 keeps nothing (every call does all the work). */
  constructor(maxEntries = 64) {
    this.#maxEntries = maxEntries;
    this.#suppliedRoots = new ContentCache(Math.min(maxEntries, 4));
    this.#keyBindings = new ContentCache(maxEntries);
  }

  /**
   * Whether the QE report data binds the quote's attestation key (a SHA-256 in JavaScript, worth
   * remembering: the key, the QE auth data and the QE report are the same for every quote of a QE).
   */
  attestationKeyBound(quote: TdxQuote): boolean {
    return this.#keyBindings.getOrCreate(
      [quote.attestationKey, quote.qeAuthData, quote.qeReport.reportData],
      () => qeReportDataBindsAttestationKey(quote),
    );
  }

  pckChain(pem: Uint8Array, root: Certificate, signatures: SignatureVerifier): Promise<PckChainExamination> {
    return this.#for(signatures).pckChains.remember([pem], () => examinePckChain(pem, root, signatures));
  }

  /** Throws INPUT_MALFORMED (synchronously, nothing cached) when the collateral file is not in its format. */
  collateral(
    collateral: Uint8Array,
    root: Certificate,
    signatures: SignatureVerifier,
  ): Promise<CollateralExamination> {
    return this.#for(signatures).collateral.remember([collateral], () =>
      examineCollateral(parseTdxCollateral(collateral), root, signatures),
    );
  }

  attestationKey(xy: Uint8Array, signatures: SignatureVerifier): Promise<VerificationKey | undefined> {
    return this.#for(signatures).attestationKeys.remember([xy], () => importRawP256Key(xy, signatures));
  }

  /** Throws INPUT_MALFORMED when `supplied` is not a certificate. */
  isPinnedRoot(supplied: Uint8Array): boolean {
    return this.#suppliedRoots.getOrCreate([supplied], () => isPinnedIntelRoot(supplied));
  }

  #for(signatures: SignatureVerifier): Examinations {
    let examinations = this.#bySignatures.get(signatures);
    if (examinations === undefined) {
      examinations = {
        pckChains: new ContentCache(this.#maxEntries),
        collateral: new ContentCache(this.#maxEntries),
        attestationKeys: new ContentCache(this.#maxEntries),
      };
      this.#bySignatures.set(signatures, examinations);
    }
    return examinations;
  }
}
