import type { FastifyInstance } from 'fastify';
import {
  ATTESTATION_NONCE_HEX_LENGTH,
  SERVING_ATTESTATION_PATH,
  TresorError,
  type ComponentEvidence,
} from '@tresor/protocol';
import type { TokenBucket } from '@tresor/server-kit';

const NONCE = new RegExp(`^[0-9a-f]{${ATTESTATION_NONCE_HEX_LENGTH}}$`);

export interface AttestationRouteOptions {
  /** Fresh evidence for `nonce`. */
  readonly produce: (nonce: string) => Promise<ComponentEvidence>;
  /** The evidence produced at start-up (receipts name its hash), served when no nonce is given. */
  readonly boot: () => ComponentEvidence | undefined;
  readonly bucket: TokenBucket;
}

/**
 * `GET /attestation?nonce=<64 hex>`: fresh evidence bound to the caller's nonce, for the gateway
 * and clients to verify. Without a nonce, the boot evidence (whose SHA-256 receipts name).
 */
export function registerAttestationRoute(app: FastifyInstance, options: AttestationRouteOptions): void {
  app.get(SERVING_ATTESTATION_PATH, async (request, reply) => {
    const { nonce } = request.query as { nonce?: unknown };
    if (nonce === undefined) {
      const boot = options.boot();
      if (boot === undefined)
        throw new TresorError('SERVICE_NOT_READY', 'no boot evidence yet; retry shortly');
      return reply.header('cache-control', 'no-store').send(boot);
    }
    if (typeof nonce !== 'string' || !NONCE.test(nonce)) {
      throw new TresorError(
        'USAGE_INVALID',
        `nonce must be ${ATTESTATION_NONCE_HEX_LENGTH} lowercase hex digits (32 random bytes)`,
      );
    }
    if (!options.bucket.take()) {
      throw new TresorError('RATE_LIMITED', 'too many evidence requests; retry in a second');
    }
    return reply.header('cache-control', 'no-store').send(await options.produce(nonce));
  });
}
