import { isCrlSignedBy, isSignedBy, type Certificate, type Crl } from '../certs.js';
import type { SignatureVerifier, VerificationKey } from '../signatures/index.js';
import type { ChainAssessment } from './chain.js';

/** Chain assessments kept per endorsements: one per way a report can name its product and signer. */
const MAX_ASSESSMENTS = 8;

/** The signer certificate's report-signing key, or why there is none. */
export type LeafKey =
  | { readonly key: VerificationKey; readonly problem: null }
  | { readonly key: null; readonly problem: string };

/**
 * What one SignatureVerifier establishes about one set of endorsements, independent of time and of
 * any report: the leaf's ECDSA P-384 key (imported once) and the signature checks between
 * certificates and of the CRL (memoised as promises, so concurrent verifications share them).
 */
export class ChainVerdicts {
  readonly #leaf: Certificate;
  readonly #crl: Crl | null;
  readonly #signatures: SignatureVerifier;
  readonly #certificateSignatures = new WeakMap<Certificate, WeakMap<Certificate, Promise<boolean>>>();
  readonly #crlSignatures = new WeakMap<Certificate, Promise<boolean>>();
  #leafKey: Promise<LeafKey> | undefined;
  readonly #assessments = new Map<string, Promise<ChainAssessment>>();

  constructor(leaf: Certificate, crl: Crl | null, signatures: SignatureVerifier) {
    this.#leaf = leaf;
    this.#crl = crl;
    this.#signatures = signatures;
  }

  get signatures(): SignatureVerifier {
    return this.#signatures;
  }

  /** The leaf's key for report signatures (imported on first use). */
  leafKey(): Promise<LeafKey> {
    this.#leafKey ??= importLeafKey(this.#leaf, this.#signatures);
    return this.#leafKey;
  }

  /**
   * The time-independent chain checks for reports that resolve the chain the same way (`key`:
   * signing key, CPUID product, caller's product), made once. Bounded: report fields choose the
   * key, so at most a few are kept.
   */
  assessment(key: string, assess: () => Promise<ChainAssessment>): Promise<ChainAssessment> {
    let assessment = this.#assessments.get(key);
    if (assessment === undefined) {
      if (this.#assessments.size >= MAX_ASSESSMENTS) this.#assessments.clear();
      const made = assess();
      // A certificate field the library cannot decode rejects: not remembered, like any failure.
      made.catch(() => {
        if (this.#assessments.get(key) === made) this.#assessments.delete(key);
      });
      this.#assessments.set(key, made);
      assessment = made;
    }
    return assessment;
  }

  /** `cert` verifies under `issuer`'s key (memoised; never rejects). */
  signedBy(cert: Certificate, issuer: Certificate): Promise<boolean> {
    let byIssuer = this.#certificateSignatures.get(cert);
    if (byIssuer === undefined) {
      byIssuer = new WeakMap();
      this.#certificateSignatures.set(cert, byIssuer);
    }
    let result = byIssuer.get(issuer);
    if (result === undefined) {
      result = isSignedBy(cert, issuer, this.#signatures);
      byIssuer.set(issuer, result);
    }
    return result;
  }

  /** The CRL verifies under `issuer`'s key (memoised; false without a CRL). */
  crlSignedBy(issuer: Certificate): Promise<boolean> {
    const crl = this.#crl;
    if (crl === null) return Promise.resolve(false);
    let result = this.#crlSignatures.get(issuer);
    if (result === undefined) {
      result = isCrlSignedBy(crl, issuer, this.#signatures);
      this.#crlSignatures.set(issuer, result);
    }
    return result;
  }
}

/** Report signatures are ECDSA P-384 (signature_algo 1); a leaf with any other key cannot have made one. */
async function importLeafKey(leaf: Certificate, signatures: SignatureVerifier): Promise<LeafKey> {
  let algorithm: Partial<EcKeyAlgorithm>;
  try {
    algorithm = leaf.publicKey.algorithm;
  } catch {
    return { key: null, problem: "the signer certificate's public key is unreadable" };
  }
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-384') {
    return {
      key: null,
      problem: `the signer certificate's key is ${algorithm.name ?? 'unknown'} ${algorithm.namedCurve ?? ''}, not ECDSA P-384`,
    };
  }
  const key = await signatures.importPublicKey(new Uint8Array(leaf.publicKey.rawData), {
    name: 'ECDSA',
    namedCurve: 'P-384',
  });
  return key === undefined
    ? { key: null, problem: "the signer certificate's P-384 public key does not import" }
    : { key, problem: null };
}
