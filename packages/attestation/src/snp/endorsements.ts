import { TresorError } from '@tresor/protocol';
import { parseCertificates, parseCrl, type Certificate, type Crl } from '../certs.js';
import { ContentCache } from '../content-cache.js';
import type { SignatureVerifier } from '../signatures/index.js';
import { ChainVerdicts } from './chain-verdicts.js';
import { signerCertificateClaims, type SnpSignerCertificateClaims } from './claims.js';
import { commonName } from './names.js';
import { productFromCommonName, type SnpProduct } from './product.js';
import { readAmdKeyExtensions, type AmdKeyExtensions } from './vcek-extensions.js';

/** What a SEV-SNP report is verified against (the `inputs` roles signer_cert, ca_chain of the test data). */
export interface SnpEndorsements {
  /** The VCEK or VLEK, DER or PEM; a PEM bundle may go on with its ASK/ASVK and ARK. */
  readonly signerCert: Uint8Array;
  /**
   * ASK (or ASVK) and ARK, PEM or DER, as AMD KDS serves `cert_chain`. Optional: without it the
   * ASK/ASVK and ARK pinned in code for the report's product are used.
   */
  readonly caChain?: Uint8Array;
  /** A CRL from AMD KDS (issued by the ARK) or one issued by the ASK/ASVK, DER or PEM. */
  readonly crl?: Uint8Array;
  /** The product, for version-2 reports that do not name it (otherwise read from the chain). */
  readonly product?: SnpProduct;
}

export type AmdKeyKind = 'vcek' | 'vlek';

/** AMD names the leaf by its role: CN=SEV-VCEK or CN=SEV-VLEK. */
function keyKind(cn: string | null): AmdKeyKind | null {
  if (cn === 'SEV-VCEK') return 'vcek';
  if (cn === 'SEV-VLEK') return 'vlek';
  return null;
}

function isSelfIssued(cert: Certificate): boolean {
  return cert.subject === cert.issuer;
}

/**
 * The endorsements parsed, with every fact that does not depend on the verification time worked
 * out once: extensions, names, and (per SignatureVerifier, see chain-verdicts.ts) the leaf's key and
 * memoised signature checks between the certificates. One instance serves every report signed by
 * the same key, which is what makes a cached verification cost one ECDSA verify.
 */
export class ParsedEndorsements {
  readonly leaf: Certificate;
  readonly leafKind: AmdKeyKind | null;
  readonly leafIssuerProduct: SnpProduct | null;
  readonly extensions: AmdKeyExtensions;
  /** The self-issued root in the supplied certificates, if any. */
  readonly suppliedArk: Certificate | null;
  /** The certificate that issued the leaf (by name) in the supplied certificates, if any. */
  readonly suppliedIntermediate: Certificate | null;
  readonly crl: Crl | null;
  /** The signer certificate's claims (names, dates, AMD extensions), the same for every report. */
  readonly signerClaims: SnpSignerCertificateClaims;
  readonly #verdicts = new WeakMap<SignatureVerifier, ChainVerdicts>();

  private constructor(leaf: Certificate, pool: readonly Certificate[], crl: Crl | null) {
    this.leaf = leaf;
    this.leafKind = keyKind(commonName(leaf, 'subject'));
    const issuerCn = commonName(leaf, 'issuer');
    this.leafIssuerProduct = issuerCn === null ? null : productFromCommonName(issuerCn);
    this.extensions = readAmdKeyExtensions(leaf);
    this.suppliedArk = pool.find(isSelfIssued) ?? null;
    this.suppliedIntermediate =
      pool.find((c) => !isSelfIssued(c) && c.subject === leaf.issuer) ??
      pool.find((c) => !isSelfIssued(c)) ??
      null;
    this.crl = crl;
    this.signerClaims = signerCertificateClaims(leaf, this.extensions);
  }

  /**
   * Parses the endorsement bytes. Unparseable certificates or CRLs are unusable input, not a
   * verification result: they throw INPUT_MALFORMED naming the file's role.
   */
  static parse(endorsements: SnpEndorsements): ParsedEndorsements {
    const [leaf, ...rest] = parseCertificates(endorsements.signerCert, 'signer certificate (VCEK/VLEK)');
    const pool =
      endorsements.caChain === undefined
        ? rest
        : parseCertificates(endorsements.caChain, 'CA chain (ASK/ASVK, ARK)');
    const crl = endorsements.crl === undefined ? null : parseCrl(endorsements.crl, 'AMD CRL');
    try {
      return new ParsedEndorsements(leaf!, pool, crl);
    } catch (cause) {
      // The X.509 library decodes some fields lazily; a certificate that parsed but cannot be read
      // is still malformed input, reported as such rather than as a library exception.
      throw new TresorError('INPUT_MALFORMED', 'the signer certificate or CA chain has unreadable fields', {
        cause,
      });
    }
  }

  /** The signature facts of these endorsements as `signatures` establishes them (made once, then memoised). */
  verdicts(signatures: SignatureVerifier): ChainVerdicts {
    let verdicts = this.#verdicts.get(signatures);
    if (verdicts === undefined) {
      verdicts = new ChainVerdicts(this.leaf, this.crl, signatures);
      this.#verdicts.set(signatures, verdicts);
    }
    return verdicts;
  }
}

/**
 * A small LRU of parsed endorsements, keyed by the exact endorsement bytes (see ContentCache: a
 * changed byte is never served a stale verdict). The verification time is never part of what is
 * cached: validity, CRL currency and everything about the report are checked on every call.
 */
export class SnpChainCache {
  readonly #entries: ContentCache<ParsedEndorsements>;

  constructor(maxEntries = 64) {
    this.#entries = new ContentCache(Math.max(1, maxEntries));
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The parsed endorsements; throws INPUT_MALFORMED (and caches nothing) when they do not parse. */
  get(endorsements: SnpEndorsements): ParsedEndorsements {
    return this.#entries.getOrCreate([endorsements.signerCert, endorsements.caChain, endorsements.crl], () =>
      ParsedEndorsements.parse(endorsements),
    );
  }
}
