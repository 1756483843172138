import type { TrustPlugin } from '../context.js';
import { trustOpenApi } from './trust-openapi.js';

export const OPENAPI_PATH = '/openapi.json';

/** Serves the OpenAPI description of the trust service at `/openapi.json`. */
export function openApiPlugin(): TrustPlugin {
  const body = JSON.stringify(trustOpenApi());
  return (app) => {
    app.get(OPENAPI_PATH, (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').type('application/json').send(body),
    );
  };
}
