import { TresorError } from '@tresor/protocol';
import { equalBytes } from '@tresor/crypto';
import {
  isCrlSignedBy,
  isSignedBy,
  parseCertificates,
  parseCrl,
  type Certificate,
  type Crl,
} from '../certs.js';
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

export function commonName(cert: Certificate, which: 'subject' | 'issuer'): string | null {
  const name = which === 'subject' ? cert.subjectName : cert.issuerName;
  return name.getField('CN')[0] ?? null;
}

function isSelfIssued(cert: Certificate): boolean {
  return cert.subject === cert.issuer;
}

/**
 * The endorsements parsed, with every fact that does not depend on the verification time worked
 * out once: extensions, the leaf's WebCrypto key, and (memoised) signature checks between the
 * certificates. One instance serves every report signed by the same key, which is what makes a
 * cached verification cost one ECDSA verify.
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
  /** The leaf's ECDSA P-384 verification key, or null with the reason. */
  readonly leafKey: CryptoKey | null;
  readonly leafKeyProblem: string | null;
  readonly #signatures = new WeakMap<Certificate, WeakMap<Certificate, Promise<boolean>>>();
  readonly #crlSignatures = new WeakMap<Certificate, Promise<boolean>>();

  private constructor(
    leaf: Certificate,
    pool: readonly Certificate[],
    crl: Crl | null,
    leafKey: CryptoKey | null,
    leafKeyProblem: string | null,
  ) {
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
    this.leafKey = leafKey;
    this.leafKeyProblem = leafKeyProblem;
  }

  /**
   * Parses the endorsement bytes. Unparseable certificates or CRLs are unusable input, not a
   * verification result: they throw INPUT_MALFORMED naming the file's role.
   */
  static async parse(endorsements: SnpEndorsements): Promise<ParsedEndorsements> {
    const [leaf, ...rest] = parseCertificates(endorsements.signerCert, 'signer certificate (VCEK/VLEK)');
    const pool =
      endorsements.caChain === undefined
        ? rest
        : parseCertificates(endorsements.caChain, 'CA chain (ASK/ASVK, ARK)');
    const crl = endorsements.crl === undefined ? null : parseCrl(endorsements.crl, 'AMD CRL');
    try {
      const { key, problem } = await importLeafKey(leaf!);
      return new ParsedEndorsements(leaf!, pool, crl, key, problem);
    } catch (cause) {
      // The X.509 library decodes some fields lazily; a certificate that parsed but cannot be read
      // is still malformed input, reported as such rather than as a library exception.
      throw new TresorError('INPUT_MALFORMED', 'the signer certificate or CA chain has unreadable fields', {
        cause,
      });
    }
  }

  /** `cert` verifies under `issuer`'s key (memoised; never throws). */
  signedBy(cert: Certificate, issuer: Certificate): Promise<boolean> {
    let byIssuer = this.#signatures.get(cert);
    if (byIssuer === undefined) {
      byIssuer = new WeakMap();
      this.#signatures.set(cert, byIssuer);
    }
    let result = byIssuer.get(issuer);
    if (result === undefined) {
      result = isSignedBy(cert, issuer);
      byIssuer.set(issuer, result);
    }
    return result;
  }

  /** The CRL verifies under `issuer`'s key (memoised; false without a CRL). */
  crlSignedBy(issuer: Certificate): Promise<boolean> {
    const crl = this.crl;
    if (crl === null) return Promise.resolve(false);
    let result = this.#crlSignatures.get(issuer);
    if (result === undefined) {
      result = isCrlSignedBy(crl, issuer);
      this.#crlSignatures.set(issuer, result);
    }
    return result;
  }
}

/** Report signatures are ECDSA P-384 (signature_algo 1); a leaf with any other key cannot have made one. */
async function importLeafKey(leaf: Certificate): Promise<{ key: CryptoKey | null; problem: string | null }> {
  const algorithm = leaf.publicKey.algorithm as Partial<EcKeyAlgorithm>;
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-384') {
    return {
      key: null,
      problem: `the signer certificate's key is ${algorithm.name ?? 'unknown'} ${algorithm.namedCurve ?? ''}, not ECDSA P-384`,
    };
  }
  try {
    const key = await leaf.publicKey.export({ name: 'ECDSA', namedCurve: 'P-384' }, ['verify']);
    return { key, problem: null };
  } catch {
    return { key: null, problem: "the signer certificate's P-384 public key does not import" };
  }
}

/**
 * A small LRU of parsed endorsements. An entry is found by a cheap checksum of the endorsement bytes
 * and used only when every byte equals the copy it was made from, so a changed byte is never served a
 * stale verdict. The verification time is never part of what is cached: validity, CRL currency and
 * everything about the report are checked on every call.
 */
export class SnpChainCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #maxEntries: number;

  constructor(maxEntries = 64) {
    this.#maxEntries = Math.max(1, maxEntries);
  }

  get size(): number {
    return this.#entries.size;
  }

  get(endorsements: SnpEndorsements): Promise<ParsedEndorsements> {
    const parts = endorsementParts(endorsements);
    const key = checksum(parts);
    const hit = this.#entries.get(key);
    if (hit !== undefined && sameParts(hit.parts, parts)) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit.parsed;
    }
    const parsed = ParsedEndorsements.parse(endorsements);
    const entry: CacheEntry = { parts: parts.map((p) => p?.slice()), parsed };
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    parsed.catch(() => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    });
    return parsed;
  }
}

type Parts = readonly (Uint8Array | undefined)[];

interface CacheEntry {
  /** Private copies of the bytes the entry was parsed from. */
  readonly parts: Parts;
  readonly parsed: Promise<ParsedEndorsements>;
}

function endorsementParts(e: SnpEndorsements): Parts {
  return [e.signerCert, e.caChain, e.crl];
}

function sameParts(a: Parts, b: Parts): boolean {
  return a.every((part, i) => {
    const other = b[i];
    return part === undefined || other === undefined ? part === other : equalBytes(part, other);
  });
}

/** FNV-1a over every part with its presence and length: a lookup key, not a security measure. */
function checksum(parts: Parts): string {
  let hash = 0x811c9dc5;
  const mix = (byte: number): void => {
    hash = Math.imul(hash ^ byte, 0x01000193);
  };
  for (const part of parts) {
    const length = part?.length ?? -1;
    for (let shift = 0; shift < 32; shift += 8) mix((length >>> shift) & 0xff);
    if (part !== undefined) for (const byte of part) mix(byte);
  }
  return `${(hash >>> 0).toString(16)}:${parts.map((p) => p?.length ?? '-').join(':')}`;
}
