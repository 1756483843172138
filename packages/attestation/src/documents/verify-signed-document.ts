import { compactVerify, createLocalJWKSet, errors, type JSONWebKeySet } from 'jose';
import { TresorError } from '@tresor/protocol';
import { bytesToHex, toArrayBuffer, utf8Decode } from '@tresor/crypto';
import {
  DOCUMENT_ALGORITHM,
  DOCUMENT_TYPE,
  MAX_SIGNED_DOCUMENT_LENGTH,
  type SignedDocumentClaims,
  type SignedDocumentKind,
} from './document-kind.js';

/**
 * What a client remembers of the newest document it accepted, to refuse an older one later (a
 * rollback to a release or a machine that has since been withdrawn) and a different document under
 * the same version (equivocation: two views of one version shown to different clients).
 */
export interface DocumentPin {
  readonly version: number;
  /** SHA-256 of the JWS payload bytes, lowercase hex. */
  readonly digest: string;
}

export interface VerifySignedDocumentOptions {
  readonly kind: SignedDocumentKind;
  /** The trust service's document keys, pinned by the client (never taken from the document). */
  readonly keys: JSONWebKeySet;
  /** The expected `iss`; any issuer is accepted when left out. */
  readonly issuer?: string;
  /** The newest document accepted before, if any. */
  readonly pinned?: DocumentPin;
}

/** A document whose signature, type and common claims verified; its body is still to be parsed. */
export interface VerifiedDocument {
  readonly kind: SignedDocumentKind;
  /** The `kid` of the key that signed it. */
  readonly keyId: string;
  readonly claims: SignedDocumentClaims & Readonly<Record<string, unknown>>;
  readonly issuedAt: Date;
  /** What to remember to refuse rollbacks later. */
  readonly pin: DocumentPin;
}

/**
 * Verifies a signed trust document: compact JWS, ES256 only (a `none` or HMAC header is refused
 * before any key is tried, RFC 8725 §3.1), signed by one of the pinned keys, of the expected `typ`,
 * with `iss`, `iat` and a positive integer `version`, and not older than the pin.
 *
 * Runs on WebCrypto only (no Node built-ins) so that clients in browsers verify the same way.
 *
 * @throws TresorError SIGNED_DOCUMENT_INVALID for anything malformed, unsigned, signed by another key
 *   or tampered with; SIGNED_DOCUMENT_ROLLBACK for a version below the pin, or a different document
 *   under the pinned version.
 */
export async function verifySignedDocument(
  jws: string,
  options: VerifySignedDocumentOptions,
): Promise<VerifiedDocument> {
  const what = `the ${options.kind} document`;
  if (jws.length === 0 || jws.length > MAX_SIGNED_DOCUMENT_LENGTH) {
    throw invalid(`${what} is empty or longer than ${MAX_SIGNED_DOCUMENT_LENGTH} characters`);
  }
  let verified: Awaited<ReturnType<typeof compactVerify>>;
  try {
    verified = await compactVerify(jws, createLocalJWKSet(options.keys), {
      algorithms: [DOCUMENT_ALGORITHM],
    });
  } catch (cause) {
    throw invalid(`${what} ${josefailure(cause)}`, cause);
  }
  const { protectedHeader, payload } = verified;
  if (protectedHeader.typ !== DOCUMENT_TYPE[options.kind]) {
    throw invalid(
      `${what} has typ ${JSON.stringify(protectedHeader.typ ?? null)}, not ${DOCUMENT_TYPE[options.kind]}`,
    );
  }
  if (typeof protectedHeader.kid !== 'string') throw invalid(`${what} names no signing key (kid)`);
  const claims = parseClaims(payload, what, options.issuer);
  const pin: DocumentPin = { version: claims.version, digest: await sha256Hex(payload) };
  checkNotRolledBack(pin, options.pinned, what);
  return {
    kind: options.kind,
    keyId: protectedHeader.kid,
    claims,
    issuedAt: new Date(claims.iat * 1000),
    pin,
  };
}

function checkNotRolledBack(seen: DocumentPin, pinned: DocumentPin | undefined, what: string): void {
  if (pinned === undefined) return;
  if (seen.version < pinned.version) {
    throw new TresorError(
      'SIGNED_DOCUMENT_ROLLBACK',
      `${what} is version ${seen.version}, older than version ${pinned.version} accepted before`,
      { details: { version: seen.version, pinnedVersion: pinned.version } },
    );
  }
  if (seen.version === pinned.version && seen.digest !== pinned.digest) {
    throw new TresorError(
      'SIGNED_DOCUMENT_ROLLBACK',
      `${what} differs from the version ${pinned.version} accepted before, under the same version number`,
      { details: { version: seen.version } },
    );
  }
}

function parseClaims(
  payload: Uint8Array,
  what: string,
  issuer: string | undefined,
): SignedDocumentClaims & Readonly<Record<string, unknown>> {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(payload));
  } catch (cause) {
    throw invalid(`${what}'s payload is not UTF-8 JSON`, cause);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalid(`${what}'s payload is not a JSON object`);
  }
  const claims = json as Record<string, unknown>;
  const { iss, iat, version } = claims;
  if (typeof iss !== 'string' || iss === '') throw invalid(`${what} has no issuer (iss)`);
  if (issuer !== undefined && iss !== issuer) throw invalid(`${what} was issued by ${iss}, not ${issuer}`);
  if (typeof iat !== 'number' || !Number.isSafeInteger(iat) || iat < 0) {
    throw invalid(`${what} has no valid issue time (iat)`);
  }
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw invalid(`${what} has no valid version (a positive integer)`);
  }
  return { ...claims, iss, iat, version };
}

function josefailure(cause: unknown): string {
  if (cause instanceof errors.JWSSignatureVerificationFailed)
    return 'has a signature that does not verify (tampered)';
  if (cause instanceof errors.JWKSNoMatchingKey) return 'is not signed by any pinned key';
  if (cause instanceof errors.JOSEAlgNotAllowed) return `is not signed with ${DOCUMENT_ALGORITHM}`;
  if (cause instanceof errors.JOSEError) return `is not a valid compact JWS (${cause.code})`;
  return 'could not be verified';
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', toArrayBuffer(bytes))));
}

function invalid(message: string, cause?: unknown): TresorError {
  return new TresorError('SIGNED_DOCUMENT_INVALID', message, cause === undefined ? {} : { cause });
}
