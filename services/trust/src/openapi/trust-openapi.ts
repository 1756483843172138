import { ERROR_CODES } from '@tresor/protocol';
import { ADMIN_MEDIA_TYPE } from '../admin/admin-request.js';
import { HARDWARE_KINDS } from '../inventory/residency-inventory.js';
import { PEM_CHAIN_MEDIA_TYPE } from '../mesh-ca/mesh-routes.js';
import { SIGNED_DOCUMENT_MEDIA_TYPE } from '../signed-documents/document-kind.js';

/**
 * The OpenAPI 3.1 description of every trust service endpoint: health and metrics, the token JWKS,
 * the KBS protocol (Trustee-compatible), the published documents, the mesh CA and the signed admin
 * API. Written by hand, because the KBS routes read raw bodies as Trustee does and the admin API
 * takes JWS bodies, neither of which a schema-per-route generator describes; openapi.test.ts fails
 * when a registered route is missing here or a path here is not registered.
 */

type Json = string | number | boolean | null | readonly Json[] | JsonObject;
interface JsonObject {
  readonly [name: string]: Json;
}
type Schema = JsonObject;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema): Schema => ({ 'application/json': { schema } });

function tresorError(description: string): Schema {
  return { description, content: json(ref('TresorError')) };
}
function kbsError(description: string): Schema {
  return { description, content: json(ref('KbsError')) };
}

const hex = { type: 'string', pattern: '^([0-9a-f]{2})+$' } as const;
const TEE_KINDS = ['snp', 'tdx', 'nvidia', 'sample'];

const schemas: Readonly<Record<string, Schema>> = {
  TresorError: {
    type: 'object',
    required: ['code', 'message', 'action'],
    properties: {
      code: { type: 'string', enum: [...ERROR_CODES], description: 'Catalogue code (docs/errors.md).' },
      message: { type: 'string' },
      action: { type: 'string', description: 'What to do about it.' },
      details: { type: 'object', description: 'Non-secret diagnostics.' },
    },
  },
  KbsError: {
    type: 'object',
    required: ['type', 'detail'],
    description:
      "Trustee's ErrorInformation: the Rust variant name in `type`; the Tresor code leads `detail`.",
    properties: {
      type: {
        type: 'string',
        example: 'https://github.com/confidential-containers/kbs/errors/AttestationError',
      },
      detail: { type: 'string' },
    },
  },
  KbsRequest: {
    type: 'object',
    required: ['version', 'tee'],
    properties: {
      version: { type: 'string', const: '0.4.0' },
      tee: { type: 'string', example: 'snp' },
      'extra-params': { description: 'Any JSON value; read for IBM SE only.' },
    },
  },
  KbsChallenge: {
    type: 'object',
    required: ['nonce', 'extra-params'],
    properties: {
      nonce: { type: 'string', description: '32 random bytes, standard base64 with padding.' },
      'extra-params': { type: 'string', const: '' },
    },
  },
  KbsAttestation: {
    type: 'object',
    required: ['runtime-data', 'tee-evidence'],
    properties: {
      'init-data': {
        type: ['object', 'null'],
        properties: { format: { type: 'string' }, body: { type: 'string' } },
      },
      'runtime-data': {
        type: 'object',
        required: ['nonce', 'tee-pubkey'],
        properties: {
          nonce: { type: 'string' },
          'tee-pubkey': {
            type: 'object',
            description: 'EC (ECDH-ES+A256KW) or RSA (RSA-OAEP-256) public JWK.',
          },
        },
      },
      'tee-evidence': {
        type: 'object',
        required: ['primary_evidence', 'additional_evidence'],
        properties: {
          primary_evidence: { description: 'TEE-specific evidence (snp, tdx, sample).' },
          additional_evidence: {
            type: 'string',
            description: 'A JSON *string*: "" or a map of device evidence.',
          },
        },
      },
    },
  },
  KbsToken: {
    type: 'object',
    required: ['token'],
    properties: { token: { type: 'string', description: 'EAR JWT.' } },
  },
  FlattenedJwe: {
    type: 'object',
    required: ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'],
    properties: Object.fromEntries(
      ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'].map((m) => [
        m,
        { type: 'string', contentEncoding: 'base64url' },
      ]),
    ),
  },
  Jwks: {
    type: 'object',
    required: ['keys'],
    properties: { keys: { type: 'array', items: { type: 'object' } } },
  },
  ReferenceValueSet: {
    type: 'object',
    required: ['component', 'release', 'tee', 'measurements'],
    additionalProperties: false,
    properties: {
      component: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' },
      release: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' },
      tee: { type: 'string', enum: TEE_KINDS },
      measurements: {
        type: 'object',
        minProperties: 1,
        additionalProperties: { type: 'array', minItems: 1, items: hex },
        description: 'Measurement name (AppraisalInput.measurements) → allowed hex values.',
      },
      imageDigests: { type: 'array', items: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } },
      initDataHashes: { type: 'array', items: hex },
      modelDigests: { type: 'array', items: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
    },
  },
  ReferenceValueKey: {
    type: 'object',
    required: ['component', 'release', 'tee'],
    additionalProperties: false,
    properties: {
      component: { type: 'string' },
      release: { type: 'string' },
      tee: { type: 'string', enum: TEE_KINDS },
    },
  },
  HardwareEntry: {
    type: 'object',
    required: ['id', 'kind', 'jurisdiction'],
    additionalProperties: false,
    properties: {
      id: {
        ...hex,
        description: 'As the verifier reports it (SNP chip id, TDX PPID, GPU serial, sample key).',
      },
      kind: { type: 'string', enum: [...HARDWARE_KINDS] },
      jurisdiction: { type: 'string', pattern: '^[A-Z]{2}$', example: 'CH' },
      site: { type: 'string', maxLength: 200 },
    },
  },
  Version: {
    type: 'object',
    required: ['version'],
    properties: { version: { type: 'integer', minimum: 1 } },
  },
  SignedAdminRequest: {
    type: 'string',
    description:
      'Compact JWS, header {"alg":"ES256"|"EdDSA","kid":"<admin key id>","typ":"tresor-admin+jwt"}, payload ' +
      '{"aud":"<issuer>","htu":"<this path>","iat":<s>,"jti":"<16-128 base64url>","request":<the operation input>}.',
  },
  MeshCertificateRequest: {
    type: 'object',
    required: ['csr'],
    additionalProperties: false,
    properties: {
      csr: { type: 'string', description: 'PEM PKCS#10 request signed with the attested TEE key.' },
      component: {
        type: 'string',
        description: 'The component to be named as; must match the measurements.',
      },
    },
  },
  MeshCertificate: {
    type: 'object',
    required: ['certificate', 'caCertificate', 'spiffeId', 'serialNumber', 'notBefore', 'notAfter'],
    properties: {
      certificate: { type: 'string' },
      caCertificate: { type: 'string' },
      spiffeId: { type: 'string', example: 'spiffe://tresor.local/serving/acme' },
      serialNumber: hex,
      notBefore: { type: 'string', format: 'date-time' },
      notAfter: { type: 'string', format: 'date-time' },
      component: { type: 'string' },
      release: { type: 'string' },
    },
  },
};

/** Input and answer of each admin operation (the `request` member of the signed payload). */
const ADMIN_OPERATIONS: readonly (readonly [string, string, Schema, Schema])[] = [
  [
    'reference-values/put',
    'Add or replace a released set of measurements.',
    ref('ReferenceValueSet'),
    ref('Version'),
  ],
  [
    'reference-values/remove',
    'Withdraw the reference values of one release.',
    ref('ReferenceValueKey'),
    ref('Version'),
  ],
  ['reference-values/list', 'The current reference values.', { type: 'null' }, { type: 'object' }],
  [
    'inventory/replace',
    'Replace the whole residency inventory.',
    {
      type: 'object',
      required: ['hardware'],
      properties: { hardware: { type: 'array', items: ref('HardwareEntry') } },
    },
    { type: 'object', properties: { version: { type: 'integer' }, machines: { type: 'integer' } } },
  ],
  [
    'inventory/put',
    'Add or update machines.',
    {
      type: 'object',
      required: ['hardware'],
      properties: { hardware: { type: 'array', items: ref('HardwareEntry') } },
    },
    { type: 'object', properties: { version: { type: 'integer' }, machines: { type: 'integer' } } },
  ],
  [
    'inventory/remove',
    'Withdraw machines.',
    { type: 'object', required: ['ids'], properties: { ids: { type: 'array', minItems: 1, items: hex } } },
    { type: 'object', properties: { version: { type: 'integer' }, machines: { type: 'integer' } } },
  ],
  ['inventory/list', 'The current residency inventory.', { type: 'null' }, { type: 'object' }],
  [
    'resources/put',
    'Store a secret (never returned by any admin call). With replace false, create only: STORAGE_CONFLICT (409) when one is stored there already.',
    {
      type: 'object',
      required: ['path', 'value'],
      properties: {
        path: { type: 'string', example: 'tenant/key/model' },
        value: { type: 'string', contentEncoding: 'base64' },
        replace: { type: 'boolean', default: true },
      },
    },
    { type: 'object', properties: { path: { type: 'string' }, bytes: { type: 'integer' } } },
  ],
  [
    'resources/delete',
    'Delete a secret.',
    { type: 'object', required: ['path'], properties: { path: { type: 'string' } } },
    { type: 'object', properties: { path: { type: 'string' }, deleted: { type: 'boolean' } } },
  ],
  ['resources/list', 'Resource names (never values).', { type: 'null' }, { type: 'object' }],
  [
    'resource-policy/set',
    'Replace the Cedar resource policy (validated against the schema; signed and stored, so it outlives restarts).',
    { type: 'object', required: ['policy'], properties: { policy: { type: 'string' } } },
    {
      type: 'object',
      properties: {
        sha256: hex,
        version: { type: 'integer', minimum: 1, description: 'Version of the stored policy.' },
      },
    },
  ],
  [
    'resource-policy/get',
    "The Cedar resource policy in force (version 0: the configuration's, never set through the API).",
    { type: 'null' },
    {
      type: 'object',
      properties: { policy: { type: 'string' }, sha256: hex, version: { type: 'integer', minimum: 0 } },
    },
  ],
  [
    'attestation-policy/set',
    'Replace the appraisal policy (docs/attestation.md), validated whole; production mode refuses the sample TEE, debug TEEs and unbound evidence. Signed and stored, so it outlives restarts.',
    {
      type: 'object',
      required: ['policy'],
      additionalProperties: false,
      properties: {
        policy: {
          type: 'object',
          description:
            'An appraisal policy: id, allowSampleTee, allowDebug, measurements, tcb, vmpls, launchFlags, maxEvidenceAgeSeconds, requireReportDataBinding, hardwareIds, requireGpuBinding.',
        },
      },
    },
    {
      type: 'object',
      properties: { version: { type: 'integer', minimum: 1 }, id: { type: 'string' }, sha256: hex },
    },
  ],
  [
    'attestation-policy/get',
    "The appraisal policy in force, defaults filled in (version 0: the configuration's).",
    { type: 'null' },
    {
      type: 'object',
      properties: { policy: { type: 'object' }, sha256: hex, version: { type: 'integer', minimum: 0 } },
    },
  ],
];

const ADMIN_REFUSALS: Schema = {
  '400': tresorError(
    'INPUT_MALFORMED: the request member is not valid for this operation; RESOURCE_POLICY_INVALID.',
  ),
  '401': tresorError(
    'ADMIN_SIGNATURE_MISSING, ADMIN_KEY_UNKNOWN, ADMIN_SIGNATURE_INVALID, ADMIN_REQUEST_EXPIRED.',
  ),
  '404': tresorError('ADMIN_TARGET_NOT_FOUND, RESOURCE_NOT_FOUND.'),
  '409': tresorError(
    'ADMIN_REQUEST_REPLAYED: this signed request was accepted before (remembered in the metadata database, across restarts and replicas); STORAGE_CONFLICT: resources/put with replace false, and a secret is stored there.',
  ),
  '413': tresorError('REQUEST_BODY_TOO_LARGE.'),
  '429': tresorError('RATE_LIMITED: too many admin requests within the replay window.'),
};

function adminPaths(): Schema {
  return Object.fromEntries(
    ADMIN_OPERATIONS.map(([name, summary, input, output]) => [
      `/admin/v0/${name}`,
      {
        post: {
          tags: ['admin'],
          summary,
          operationId: `admin.${name.replace('/', '.')}`,
          security: [{ adminSignature: [] }],
          description: `The signed payload's \`request\` member: ${JSON.stringify(input)}.`,
          requestBody: {
            required: true,
            content: { [ADMIN_MEDIA_TYPE]: { schema: ref('SignedAdminRequest') } },
          },
          responses: { '200': { description: 'Done.', content: json(output) }, ...ADMIN_REFUSALS },
        },
      },
    ]),
  );
}

const document = (summary: string): Schema => ({
  get: {
    tags: ['documents'],
    summary,
    responses: {
      '200': {
        description: 'Compact JWS (ES256, typ tresor-…+jwt) with iss, iat and a growing version.',
        headers: { 'tresor-document-version': { schema: { type: 'integer' } } },
        content: { [SIGNED_DOCUMENT_MEDIA_TYPE]: { schema: { type: 'string' } } },
      },
    },
  },
});

/** The OpenAPI document (a fresh object each call). */
export function trustOpenApi(): Schema {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tresor trust service',
      version: '0.1.0',
      description:
        'Key broker (Trustee KBS protocol 0.4.0), attestation tokens, reference values, residency inventory, mesh CA, signed admin API. See docs/trust.md.',
    },
    tags: ['operations', 'kbs', 'documents', 'mesh', 'admin'].map((name) => ({ name })),
    paths: {
      '/healthz': {
        get: { tags: ['operations'], summary: 'Liveness.', responses: { '200': { description: 'Alive.' } } },
      },
      '/readyz': {
        get: {
          tags: ['operations'],
          summary: 'Readiness (keystore reachable).',
          responses: { '200': { description: 'Ready.' }, '503': tresorError('SERVICE_NOT_READY.') },
        },
      },
      '/metrics': {
        get: {
          tags: ['operations'],
          summary: 'Prometheus metrics (no content, no identifiers).',
          responses: {
            '200': {
              description: 'Prometheus text format.',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
          },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['operations'],
          summary: 'This document.',
          responses: { '200': { description: 'OpenAPI 3.1.', content: json({ type: 'object' }) } },
        },
      },
      '/.well-known/jwks.json': {
        get: {
          tags: ['kbs'],
          summary: 'The attestation token signing keys (RFC 7517 JWKS).',
          responses: { '200': { description: 'JWKS.', content: json(ref('Jwks')) } },
        },
      },
      '/kbs/v0/auth': {
        post: {
          tags: ['kbs'],
          summary: 'RCAR request: protocol version and TEE kind → challenge nonce and session cookie.',
          requestBody: { required: true, content: json(ref('KbsRequest')) },
          responses: {
            '200': {
              description: 'Challenge; Set-Cookie kbs-session-id (32 hex, expires with the session).',
              content: json(ref('KbsChallenge')),
            },
            '401': kbsError(
              'AttestationError: version other than 0.4.0, malformed request, unsupported TEE.',
            ),
            '413': kbsError('PayloadTooLarge.'),
            '429': kbsError('Too many live sessions.'),
          },
        },
      },
      '/kbs/v0/attest': {
        post: {
          tags: ['kbs'],
          summary: 'RCAR attestation: evidence bound to the nonce and the TEE key → EAR attestation token.',
          security: [{ kbsSession: [] }],
          requestBody: { required: true, content: json(ref('KbsAttestation')) },
          responses: {
            '200': { description: 'EAR token (ES256 JWT).', content: json(ref('KbsToken')) },
            '401': kbsError(
              'AttestationError: unknown/expired session, nonce replay, report_data not binding the key, debug TEE, measurement not released, hardware outside the inventory, malformed JSON or JWK.',
            ),
            '413': kbsError('PayloadTooLarge.'),
            '503': kbsError('AttestationError: the keystore (token signing) is unavailable; retry later.'),
          },
        },
      },
      '/kbs/v0/resource/{repository}/{type}/{tag}': {
        get: {
          tags: ['kbs'],
          summary: 'The secret, as a flattened JWE (A256GCM) wrapped to the attested TEE key.',
          security: [{ kbsSession: [] }, { attestationToken: [] }],
          parameters: ['repository', 'type', 'tag'].map((name) => ({
            name,
            in: 'path',
            required: true,
            schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' },
          })),
          responses: {
            '200': { description: 'Flattened JWE JSON.', content: json(ref('FlattenedJwe')) },
            '401': kbsError(
              'TokenNotFound, TokenVerifierError, PolicyDeny, PluginInternalError (also a missing resource).',
            ),
            '404': kbsError('InvalidRequestPath.'),
            '503': kbsError(
              'PluginInternalError: the keystore or the resource storage is unavailable; retry later.',
            ),
          },
        },
      },
      '/trust/v0/reference-values': document('The signed reference values (releases allowed to run).'),
      '/trust/v0/residency-inventory': document(
        'The signed residency inventory (hardware allowed to process data).',
      ),
      '/trust/v0/document-keys': {
        get: {
          tags: ['documents'],
          summary: 'The keys that sign the published documents (JWKS, pinned by clients).',
          responses: {
            '200': { description: 'JWKS.', content: { 'application/jwk-set+json': { schema: ref('Jwks') } } },
          },
        },
      },
      '/mesh/v0/ca': {
        get: {
          tags: ['mesh'],
          summary: 'The mesh CA certificate peers trust for gateway↔serving mTLS.',
          responses: {
            '200': {
              description: 'PEM.',
              content: { [PEM_CHAIN_MEDIA_TYPE]: { schema: { type: 'string' } } },
            },
          },
        },
      },
      '/mesh/v0/certificates': {
        post: {
          tags: ['mesh'],
          summary:
            'A short-lived certificate for the attested key, SPIFFE URI SAN spiffe://<domain>/<component>/<tenant|_>.',
          security: [{ attestationToken: [] }, { kbsSession: [] }],
          requestBody: { required: true, content: json(ref('MeshCertificateRequest')) },
          responses: {
            '200': {
              description: 'Issued (and recorded in the audit log).',
              content: json(ref('MeshCertificate')),
            },
            '400': tresorError('MESH_CSR_INVALID, INPUT_MALFORMED.'),
            '401': tresorError('ATTESTATION_TOKEN_INVALID, ATTESTATION_TOKEN_EXPIRED, KBS_SESSION_*.'),
            '403': tresorError('MESH_KEY_NOT_ATTESTED, RESIDENCY_VIOLATION, MEASUREMENT_NOT_ALLOWED.'),
          },
        },
      },
      ...adminPaths(),
    },
    components: {
      schemas,
      securitySchemes: {
        kbsSession: { type: 'apiKey', in: 'cookie', name: 'kbs-session-id' },
        attestationToken: { type: 'http', scheme: 'bearer', bearerFormat: 'EAR JWT' },
        adminSignature: {
          type: 'apiKey',
          in: 'header',
          name: 'content-type',
          description: `Not a header credential: the body itself is a JWS (${ADMIN_MEDIA_TYPE}) signed by an admin key listed in the config.`,
        },
      },
    },
  };
}

/** The admin operation names this document describes (the test compares them with the registered ones). */
export const DOCUMENTED_ADMIN_OPERATIONS: readonly string[] = ADMIN_OPERATIONS.map(([name]) => name);
