import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import type { JSONWebKeySet } from 'jose';
import type { SignedDocumentPublisher } from './signed-document-publisher.js';
import { SIGNED_DOCUMENT_MEDIA_TYPE } from './document-kind.js';

/** Public, unauthenticated: anyone may read what the trust service allows; the signature is what clients trust. */
export const DOCUMENT_PREFIX = '/trust/v0';

export interface DocumentRoutesOptions {
  readonly referenceValues: Pick<SignedDocumentPublisher<unknown>, 'current' | 'verificationKeys'>;
  readonly residencyInventory: Pick<SignedDocumentPublisher<unknown>, 'current' | 'verificationKeys'>;
}

/** Header carrying the version of the document served, so clients can log what they pinned. */
export const DOCUMENT_VERSION_HEADER = 'tresor-document-version';

/**
 * `GET /trust/v0/reference-values`, `GET /trust/v0/residency-inventory` (compact JWS,
 * `application/jose`) and `GET /trust/v0/document-keys` (the JWKS clients pin to verify them).
 * Register with `app.register(documentRoutes, { prefix: DOCUMENT_PREFIX, ... })`.
 */
export const documentRoutes: FastifyPluginAsync<DocumentRoutesOptions> = (
  scope: FastifyInstance,
  options,
) => {
  const serve = (
    reply: FastifyReply,
    document: { readonly version: number; readonly jws: string },
  ): FastifyReply =>
    reply
      .header('content-type', SIGNED_DOCUMENT_MEDIA_TYPE)
      .header(DOCUMENT_VERSION_HEADER, String(document.version))
      .header('cache-control', 'no-cache')
      .send(document.jws);
  scope.get('/reference-values', (_request, reply) => serve(reply, options.referenceValues.current));
  scope.get('/residency-inventory', (_request, reply) => serve(reply, options.residencyInventory.current));
  scope.get('/document-keys', (_request, reply) => {
    const keys = new Map<string, JSONWebKeySet['keys'][number]>();
    for (const set of [
      options.referenceValues.verificationKeys,
      options.residencyInventory.verificationKeys,
    ]) {
      for (const key of set.keys) keys.set(key.kid ?? JSON.stringify(key), key);
    }
    return reply.header('content-type', 'application/jwk-set+json').send({ keys: [...keys.values()] });
  });
  return Promise.resolve();
};
