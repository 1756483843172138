import type { TrustPlugin } from '../context.js';
import type { MeshCa } from './mesh-ca.js';
import { MESH_PREFIX, meshRoutes } from './mesh-routes.js';

/**
 * The mesh CA routes (`/mesh/v0/…`). The caller is the workload the trust service attested: its KBS
 * session cookie or its attestation token as bearer, never anything the request claims.
 */
export function meshCaPlugin(ca: MeshCa): TrustPlugin {
  return async (app, context) => {
    await app.register(meshRoutes, {
      prefix: MESH_PREFIX,
      ca,
      authenticate: async (request) => (await context.authenticateWorkload(request)).identity,
    });
  };
}
