import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { schemaProblem } from '../signed-documents/schema-problem.js';
import type { AttestedWorkload } from './attested-workload.js';
import { MAX_CSR_LENGTH } from './certification-request.js';
import type { MeshCa } from './mesh-ca.js';

export const MESH_PREFIX = '/mesh/v0';
/** RFC 8555 §9.1: a PEM certificate chain. */
export const PEM_CHAIN_MEDIA_TYPE = 'application/pem-certificate-chain';

export interface MeshRoutesOptions {
  readonly ca: MeshCa;
  /**
   * Who is asking, from a verified attestation: the EAR token in `Authorization: Bearer` (or the
   * KBS session). Throws ATTESTATION_TOKEN_INVALID / _EXPIRED when there is none.
   */
  readonly authenticate: (request: FastifyRequest) => Promise<AttestedWorkload>;
}

const certificateRequestSchema = z.strictObject({
  csr: z.string().min(1).max(MAX_CSR_LENGTH),
  component: z.string().max(64).optional(),
});

/**
 * `GET /mesh/v0/ca` (the CA certificate peers trust) and `POST /mesh/v0/certificates` (a
 * certificate for the caller's attested key). Register with
 * `app.register(meshRoutes, { prefix: MESH_PREFIX, ... })`.
 */
export const meshRoutes: FastifyPluginAsync<MeshRoutesOptions> = (scope: FastifyInstance, options) => {
  scope.get('/ca', (_request, reply) =>
    reply.header('content-type', PEM_CHAIN_MEDIA_TYPE).send(options.ca.caCertificatePem),
  );
  scope.post('/certificates', { bodyLimit: 2 * MAX_CSR_LENGTH }, async (request, reply) => {
    const workload = await options.authenticate(request);
    const parsed = certificateRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      throw new TresorError('INPUT_MALFORMED', `the certificate request ${schemaProblem(parsed.error)}`);
    }
    const issued = await options.ca.issue(
      {
        csr: parsed.data.csr,
        ...(parsed.data.component === undefined ? {} : { component: parsed.data.component }),
      },
      workload,
    );
    return reply.header('cache-control', 'no-store').send({
      certificate: issued.certificatePem,
      caCertificate: issued.caCertificatePem,
      spiffeId: issued.spiffeId,
      serialNumber: issued.serialNumber,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      component: issued.release.component,
      release: issued.release.release,
    });
  });
  return Promise.resolve();
};
