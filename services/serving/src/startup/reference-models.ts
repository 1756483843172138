import { TresorError } from '@tresor/protocol';
import { verifyReferenceValuesDocument, type KbsTransport } from '@tresor/trust';
import { trustGet } from './trust-http.js';

/**
 * The model digests the reference values allow this replica's release to load: the set of the
 * component, release and TEE its attestation token names. Empty means "any" (the set does not
 * constrain models, or the trust service does not enforce reference values in development).
 * The document is verified with the trust service's document keys, fetched over the same
 * authenticated TLS channel the model keys came through.
 */
export async function allowedModelDigests(
  transport: KbsTransport,
  release: { readonly component?: string; readonly release?: string; readonly tee?: string },
): Promise<ReadonlySet<string>> {
  if (release.component === undefined || release.release === undefined || release.tee === undefined) {
    return new Set();
  }
  type DocumentKeys = Parameters<typeof verifyReferenceValuesDocument>[1]['keys'];
  const keys = JSON.parse(
    new TextDecoder().decode((await trustGet(transport, '/trust/v0/document-keys', 'application/json')).body),
  ) as DocumentKeys;
  const jws = new TextDecoder().decode(
    (await trustGet(transport, '/trust/v0/reference-values', 'application/jose')).body,
  );
  const document = await verifyReferenceValuesDocument(jws.trim(), {
    keys,
  });
  const set = document.body.referenceValues.find(
    (s) => s.component === release.component && s.release === release.release && s.tee === release.tee,
  );
  if (set === undefined) {
    throw new TresorError(
      'MEASUREMENT_NOT_ALLOWED',
      `the reference values no longer list ${release.component} ${release.release} on ${release.tee}`,
    );
  }
  return new Set(set.modelDigests);
}
