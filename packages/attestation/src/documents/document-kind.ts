/**
 * The documents the trust service signs and publishes so clients can check what it allows without
 * trusting the channel they fetched it over: the reference values (which releases may run) and the
 * residency inventory (which hardware may process data).
 */
export type SignedDocumentKind = 'reference-values' | 'residency-inventory';

/**
 * The JWS `typ` of each kind (RFC 7515 §4.1.9). Explicit typing (RFC 8725 §3.11) keeps a document
 * of one kind, or any other JWT a trust-service key signed, from being accepted as another kind.
 */
export const DOCUMENT_TYPE: Readonly<Record<SignedDocumentKind, string>> = {
  'reference-values': 'tresor-reference-values+jwt',
  'residency-inventory': 'tresor-residency-inventory+jwt',
};

/** The media type the public endpoints serve documents with: a compact JWS (RFC 7515 §9.2.1). */
export const SIGNED_DOCUMENT_MEDIA_TYPE = 'application/jose';

/** Documents are small (hundreds of entries at most); anything far larger is refused unparsed. */
export const MAX_SIGNED_DOCUMENT_LENGTH = 1024 * 1024;

/** The signature algorithm of every published document: ECDSA P-256 with SHA-256 (RFC 7518 §3.4). */
export const DOCUMENT_ALGORITHM = 'ES256';

/** Claims every signed document carries besides its kind-specific body. */
export interface SignedDocumentClaims {
  /** The trust service that signed it (its configured issuer name). */
  readonly iss: string;
  /** When it was signed, seconds since the epoch. */
  readonly iat: number;
  /** Starts at 1 and grows by one with every change, so clients can refuse rollbacks. */
  readonly version: number;
}
