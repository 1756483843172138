import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { schemaProblem } from './schema-problem.js';
import {
  verifySignedDocument,
  type DocumentPin,
  type VerifySignedDocumentOptions,
} from './verify-signed-document.js';
import {
  MAX_REFERENCE_VALUE_SETS,
  compareKeys,
  referenceValueSetSchema,
  sameKey,
  type ReferenceValueSet,
} from './reference-value-set.js';

/**
 * The body of the reference values document: every released set, in catalogue order. The JWS
 * payload is `{"referenceValues":[…],"iss":…,"iat":…,"version":…}`.
 */
export interface ReferenceValues {
  readonly referenceValues: readonly ReferenceValueSet[];
}

const bodySchema = z.object({
  referenceValues: z.array(referenceValueSetSchema).max(MAX_REFERENCE_VALUE_SETS),
});

/** Parses the body out of a document's claims. Throws SIGNED_DOCUMENT_INVALID. */
export function parseReferenceValues(claims: Readonly<Record<string, unknown>>): ReferenceValues {
  const parsed = bodySchema.safeParse(claims);
  if (!parsed.success) {
    throw new TresorError(
      'SIGNED_DOCUMENT_INVALID',
      `the reference values document: ${schemaProblem(parsed.error)}`,
    );
  }
  const sets = parsed.data.referenceValues;
  const duplicate = sets.find((s, i) => sets.findIndex((t) => sameKey(s, t)) !== i);
  if (duplicate !== undefined) {
    throw new TresorError(
      'SIGNED_DOCUMENT_INVALID',
      `the reference values document lists ${duplicate.component} ${duplicate.release} on ${duplicate.tee} twice`,
    );
  }
  return { referenceValues: [...sets].sort(compareKeys) };
}

/** A verified reference values document, as a client (the SDK) pins it. */
export interface VerifiedReferenceValues {
  readonly version: number;
  readonly issuedAt: Date;
  readonly issuer: string;
  readonly keyId: string;
  readonly body: ReferenceValues;
  /** Remember it and pass it as `pinned` next time to refuse rollbacks. */
  readonly pin: DocumentPin;
}

/**
 * Verifies a reference values document served by a trust service (signature with the pinned
 * keys, type, version not below the pin) and parses its sets.
 *
 * @throws TresorError SIGNED_DOCUMENT_INVALID, SIGNED_DOCUMENT_ROLLBACK
 */
export async function verifyReferenceValuesDocument(
  jws: string,
  options: Omit<VerifySignedDocumentOptions, 'kind'>,
): Promise<VerifiedReferenceValues> {
  const verified = await verifySignedDocument(jws, { ...options, kind: 'reference-values' });
  return {
    version: verified.claims.version,
    issuedAt: verified.issuedAt,
    issuer: verified.claims.iss,
    keyId: verified.keyId,
    body: parseReferenceValues(verified.claims),
    pin: verified.pin,
  };
}
