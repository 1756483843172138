import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { isTresorError } from '@tresor/protocol';
import type { Clock } from '@tresor/storage';
import type { AdminKeySet } from './admin-keys.js';
import {
  auditRefusedAdminRequest,
  executeAdminOperation,
  type AdminAuditLog,
  type AdminOperation,
} from './admin-operation.js';
import { ADMIN_MEDIA_TYPE, MAX_ADMIN_REQUEST_LENGTH, verifyAdminRequest } from './admin-request.js';
import type { AdminReplayGuard } from './replay-guard.js';

/** Where the admin API lives; every operation is `POST <prefix>/<operation name>`. */
export const ADMIN_PREFIX = '/admin/v0';

export interface AdminRoutesOptions {
  readonly keys: AdminKeySet;
  /** The `aud` admin requests must name: the service's issuer name. */
  readonly audience: string;
  /** How far a request's `iat` may lie from now; default 300 s. */
  readonly windowSeconds: number;
  readonly clock: Clock;
  /** When this service started: with a guard that is not persistent, requests signed earlier are refused (their replay state is gone). */
  readonly startedAt: Date;
  readonly replay: AdminReplayGuard;
  readonly audit: AdminAuditLog;
  readonly operations: readonly AdminOperation<unknown>[];
}

/**
 * The admin API: one POST route per operation under `/admin/v0`, each taking a signed admin request
 * (`application/jose`). Register with `app.register(adminRoutes, { prefix: ADMIN_PREFIX, ...options })`.
 * A plain JSON body reaches the verifier as an object and is refused as unsigned.
 */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = (scope: FastifyInstance, options) => {
  scope.addContentTypeParser(
    ADMIN_MEDIA_TYPE,
    { parseAs: 'string', bodyLimit: MAX_ADMIN_REQUEST_LENGTH },
    (_request, body, done) => {
      done(null, body);
    },
  );
  for (const operation of options.operations) {
    scope.post(`/${operation.name}`, async (request, reply) => {
      const path = request.routeOptions.url ?? `${ADMIN_PREFIX}/${operation.name}`;
      let verified;
      try {
        verified = await verifyAdminRequest(request.body, {
          keys: options.keys,
          audience: options.audience,
          path,
          now: options.clock.now(),
          ...(options.replay.persistent ? {} : { notBefore: options.startedAt }),
          windowSeconds: options.windowSeconds,
          replay: options.replay,
        });
      } catch (err) {
        // A request an admin key really signed, refused only for its timing: worth a record.
        const adminKeyId = isTresorError(err) ? err.details?.adminKeyId : undefined;
        if (operation.mutates && isTresorError(err) && typeof adminKeyId === 'string') {
          await auditRefusedAdminRequest(options.audit, operation, adminKeyId, err.code);
        }
        throw err;
      }
      const response = await executeAdminOperation(operation, verified, options.audit);
      return reply.header('cache-control', 'no-store').send(response);
    });
  }
  return Promise.resolve();
};
