import { parseReferenceValues, type ReferenceValues } from '@tresor/attestation';
import type { DocumentBodyCodec } from '../signed-documents/signed-document-publisher.js';

/** Parsing and verification moved to @tresor/attestation (documents/); publishing stays here. */
export {
  parseReferenceValues,
  verifyReferenceValuesDocument,
  type ReferenceValues,
  type VerifiedReferenceValues,
} from '@tresor/attestation';

export const referenceValuesCodec: DocumentBodyCodec<ReferenceValues> = {
  kind: 'reference-values',
  empty: { referenceValues: [] },
  toClaims: (body) => ({ referenceValues: body.referenceValues }),
  fromClaims: parseReferenceValues,
};
