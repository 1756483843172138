import { ERROR_CODES } from '@tresor/protocol';
import { ADMIN_MEDIA_TYPE } from '@tresor/trust';

/**
 * OpenAPI 3.1 description of the gateway's public and admin endpoints, by hand (the OHTTP route
 * carries opaque encrypted bodies and the admin API JWS bodies). The OpenAI API itself lives inside
 * OHTTP; its operations are listed under `x-tresor-inner-api`.
 */
export const OPENAPI_PATH = '/openapi.json';

const ADMIN_OPERATIONS: readonly [string, string][] = [
  ['tenants/create', 'Create a tenant.'],
  ['tenants/list', 'List the tenants.'],
  ['api-keys/create', 'Create an API key (the answer holds the key, once).'],
  ['api-keys/revoke', 'Revoke an API key.'],
  ['api-keys/list', "List a tenant's API keys."],
  ['policies/set', "Replace a tenant's Cedar policy."],
  ['policies/get', "Read a tenant's Cedar policy."],
  ['usage', "Export a tenant's usage records and totals."],
  ['audit/verify', "Verify the gateway's audit chain and checkpoints (first broken record, newest records)."],
  [
    'keystore/status',
    'Whether the tenant KEK and audit key are reachable and not revoked (no key material).',
  ],
];

export function gatewayOpenApi(): Record<string, unknown> {
  const openAiError = { $ref: '#/components/schemas/OpenAiError' };
  const tresorError = { $ref: '#/components/schemas/TresorError' };
  const refusal = (description: string, schema: unknown) => ({
    description,
    content: { 'application/json': { schema } },
  });
  const admin = Object.fromEntries(
    ADMIN_OPERATIONS.map(([name, summary]) => [
      `/admin/v0/${name}`,
      {
        post: {
          summary,
          requestBody: {
            required: true,
            content: {
              [ADMIN_MEDIA_TYPE]: {
                schema: { type: 'string', description: 'Compact JWS signed by an admin key.' },
              },
            },
          },
          responses: {
            200: { description: 'Done.', content: { 'application/json': { schema: { type: 'object' } } } },
            400: refusal('Malformed request.', tresorError),
            401: refusal('Unsigned, unknown key, bad signature, expired or replayed.', tresorError),
            404: refusal('Unknown tenant or key.', tresorError),
          },
        },
      },
    ]),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tresor gateway',
      version: '0.1.0',
      description:
        'Oblivious HTTP endpoint with the OpenAI-compatible API inside the encryption; attestation bundle; signed admin API.',
    },
    paths: {
      '/.well-known/ohttp-gateway': {
        get: {
          summary: 'OHTTP key configurations (RFC 9458 §3, RFC 9540).',
          responses: {
            200: {
              description: 'Key configurations.',
              content: { 'application/ohttp-keys': { schema: { type: 'string', format: 'binary' } } },
            },
          },
        },
      },
      '/.well-known/tresor/attestation': {
        get: {
          summary:
            "The gateway's evidence, the attested replicas' evidence with the same nonce, and the signed trust documents.",
          parameters: [
            {
              name: 'nonce',
              in: 'query',
              required: true,
              schema: { type: 'string', pattern: '^[0-9a-f]{64}$' },
            },
          ],
          responses: {
            200: {
              description: 'AttestationBundle (packages/protocol/src/attestation-bundle.ts).',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            400: refusal('Bad nonce.', tresorError),
          },
        },
      },
      '/v1/ohttp': {
        post: {
          summary: 'An encapsulated Binary HTTP request to the OpenAI-compatible API.',
          requestBody: {
            required: true,
            content: {
              'message/ohttp-req': { schema: { type: 'string', format: 'binary' } },
              'message/ohttp-chunked-req': { schema: { type: 'string', format: 'binary' } },
            },
          },
          responses: {
            200: {
              description:
                'The sealed response (errors of the inner API are sealed inside it, OpenAI-shaped).',
              content: {
                'message/ohttp-res': { schema: { type: 'string', format: 'binary' } },
                'message/ohttp-chunked-res': { schema: { type: 'string', format: 'binary' } },
              },
            },
            400: refusal('Malformed, undecryptable, truncated or replayed OHTTP request.', openAiError),
            404: refusal('Unknown key id.', openAiError),
            413: refusal('Body too large.', openAiError),
            415: refusal('Not an OHTTP media type.', openAiError),
          },
        },
      },
      '/healthz': { get: { summary: 'Liveness.', responses: { 200: { description: 'Alive.' } } } },
      '/readyz': {
        get: {
          summary: 'Readiness: database, trust documents, at least one attested replica.',
          responses: { 200: { description: 'Ready.' }, 503: refusal('Not ready.', tresorError) },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics, content-free.',
          responses: {
            200: { description: 'Metrics.', content: { 'text/plain': { schema: { type: 'string' } } } },
          },
        },
      },
      [OPENAPI_PATH]: {
        get: { summary: 'This document.', responses: { 200: { description: 'OpenAPI 3.1.' } } },
      },
      ...admin,
    },
    components: {
      schemas: {
        OpenAiError: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['message', 'type', 'code'],
              properties: {
                message: { type: 'string' },
                type: { type: 'string' },
                param: { type: ['string', 'null'] },
                code: { type: 'string', enum: [...ERROR_CODES] },
              },
            },
          },
        },
        TresorError: {
          type: 'object',
          required: ['code', 'message', 'action'],
          properties: {
            code: { type: 'string', enum: [...ERROR_CODES] },
            message: { type: 'string' },
            action: { type: 'string' },
          },
        },
      },
    },
    'x-tresor-inner-api': {
      description: 'Inside /v1/ohttp (Binary HTTP), with Authorization: Bearer tr_…',
      operations: [
        'POST /v1/chat/completions',
        'POST /v1/completions',
        'POST /v1/embeddings',
        'GET /v1/models',
      ],
    },
  };
}
