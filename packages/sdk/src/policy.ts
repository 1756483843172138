import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { utf8Decode } from '@tresor/crypto';
import {
  COMPONENT_PATTERN,
  JURISDICTION_PATTERN,
  RELEASE_PATTERN,
  SampleVerifyKey,
  schemaProblem,
} from '@tresor/attestation';

/**
 * The client's trust policy (`tresor-policy.json`): what a gateway must prove before the client
 * sends it a byte. Strict JSON (an unknown member is an error, so a typo never drops a rule);
 * every default fails closed. Documented member by member in docs/client.md; the JSON Schema
 * export is docs/tresor-policy.schema.json.
 */

export const TRESOR_POLICY_VERSION = 1;

const TEE_KINDS = ['snp', 'tdx', 'nvidia', 'sample'] as const;
const hex = z
  .string()
  .regex(/^(?:[0-9a-fA-F]{2})+$/, 'hex digits (an even number)')
  .transform((s) => s.toLowerCase());
const measurementName = z.string().regex(/^[a-z][a-z0-9_.]{0,63}$/, 'a measurement name such as "mrtd"');

/** A pinned trust-service document key: the public JWK itself, or its RFC 7638 SHA-256 thumbprint. */
const trustKeySchema = z.union([
  z.strictObject({
    /** The public ES256 key (JWK, kty EC, crv P-256) that signs reference values and inventory. */
    jwk: z
      .looseObject({ kty: z.literal('EC'), crv: z.literal('P-256'), x: z.string(), y: z.string() })
      .refine((jwk) => !('d' in jwk), 'a public key only: remove the private member "d"'),
  }),
  z.strictObject({
    /** RFC 7638 JWK thumbprint (SHA-256, base64url); the key is fetched from the trust service's document-keys JWKS. */
    thumbprint: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'an RFC 7638 SHA-256 thumbprint (43 base64url characters)'),
  }),
]);

const releaseSchema = z.strictObject({
  component: z.string().regex(COMPONENT_PATTERN, 'a component such as "gateway" or "serving"'),
  release: z.string().regex(RELEASE_PATTERN, 'a release label such as "1.4.0"'),
});

const measurementsSchema = z.strictObject({
  component: z.string().regex(COMPONENT_PATTERN, 'a component such as "gateway" or "serving"'),
  tee: z.enum(TEE_KINDS),
  /** Per measurement name, the allowed values (all named ones must match). */
  measurements: z
    .record(measurementName, z.array(hex).min(1))
    .refine((m) => Object.keys(m).length > 0, 'at least one measurement (an empty set would match anything)'),
});

const minimumTcbSchema = z.strictObject({
  tee: z.enum(TEE_KINDS),
  product: z.string().min(1).max(64).optional(),
  components: z.record(z.string().regex(/^[a-z][a-z0-9_.]{0,63}$/), z.number().int().nonnegative()),
});

export const tresorPolicySchema = z
  .strictObject({
    /** Lets editors find docs/tresor-policy.schema.json; ignored. */
    $schema: z.string().optional(),
    version: z.literal(TRESOR_POLICY_VERSION),
    /** The trust service's document-signing keys, pinned: reference values and inventory must verify with one. */
    trustServiceKeys: z.array(trustKeySchema).min(1).max(16),
    /** The expected `iss` of the signed documents; any issuer when left out. */
    trustIssuer: z.string().min(1).max(200).optional(),
    /** Accept any release the signed reference values list (otherwise: only `releases` / `measurements`). */
    trustSignedReferenceValues: z.boolean().default(false),
    /** Pinned releases: a workload must match the signed reference values of one of these. */
    releases: z.array(releaseSchema).max(256).default([]),
    /** Measurements accepted directly, signed reference values or not. */
    measurements: z.array(measurementsSchema).max(256).default([]),
    /** Minimum TCB per TEE kind (and product); a TEE kind without an entry is not constrained. */
    minimumTcb: z.array(minimumTcbSchema).max(64).default([]),
    /** Jurisdictions (ISO 3166-1 alpha-2) the hardware may stand in, per the signed residency inventory. */
    jurisdictions: z
      .array(z.string().regex(JURISDICTION_PATTERN, 'an ISO 3166-1 alpha-2 country code such as "CH"'))
      .min(1)
      .default(['CH']),
    /** Accept the sample (software) TEE: local development only, it protects nothing. */
    allowSampleTee: z.boolean().default(false),
    /** The sample TEE installation keys (Ed25519 JWK or 64 hex digits) that sign local evidence. */
    sampleVerifyKeys: z
      .array(
        z.union([
          z.string(),
          z.looseObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string() }),
        ]),
      )
      .max(16)
      .default([]),
    /** Oldest evidence accepted, and how long a verification is reused, in seconds. */
    maxEvidenceAgeSeconds: z.number().int().positive().max(86_400).default(300),
    /** Serving replicas must present NVIDIA GPU evidence (confidential-computing mode). */
    requireGpu: z.boolean().default(false),
    /** Every model response must carry a receipt signed by the attested serving replica. */
    requireReceipts: z.boolean().default(true),
  })
  .refine((p) => p.trustSignedReferenceValues || p.releases.length > 0 || p.measurements.length > 0, {
    message:
      'say which code you trust: set "trustSignedReferenceValues": true, or list "releases" or "measurements"',
    path: ['trustSignedReferenceValues'],
  })
  .refine((p) => !p.allowSampleTee || p.sampleVerifyKeys.length > 0, {
    message: 'allowSampleTee needs the local installation key in "sampleVerifyKeys"',
    path: ['sampleVerifyKeys'],
  });

/** The policy as written (defaults optional). */
export type TresorPolicyInput = z.input<typeof tresorPolicySchema>;

/** A validated policy with defaults filled in and the sample keys parsed. */
export type TresorPolicy = Omit<z.output<typeof tresorPolicySchema>, 'sampleVerifyKeys'> & {
  readonly sampleVerifyKeys: readonly SampleVerifyKey[];
};

/**
 * Validates a policy object. Throws TRUST_POLICY_INVALID naming the first offending member.
 */
export function parseTresorPolicy(value: unknown): TresorPolicy {
  const parsed = tresorPolicySchema.safeParse(value);
  if (!parsed.success) {
    throw new TresorError('TRUST_POLICY_INVALID', `trust policy ${schemaProblem(parsed.error)}`);
  }
  const sampleVerifyKeys = parsed.data.sampleVerifyKeys.map((key, i) => {
    try {
      return SampleVerifyKey.parse(typeof key === 'string' ? key : JSON.stringify(key));
    } catch (cause) {
      throw new TresorError(
        'TRUST_POLICY_INVALID',
        `trust policy sampleVerifyKeys.${i}: not an Ed25519 public key (JWK or 64 hex digits)`,
        { cause },
      );
    }
  });
  return Object.freeze({ ...parsed.data, sampleVerifyKeys });
}

/** Reads a `tresor-policy.json` file's bytes. Throws TRUST_POLICY_INVALID. */
export function loadTresorPolicy(bytes: Uint8Array): TresorPolicy {
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(bytes));
  } catch (cause) {
    throw new TresorError('TRUST_POLICY_INVALID', 'the trust policy file is not UTF-8 JSON', { cause });
  }
  return parseTresorPolicy(value);
}

/** The JSON Schema (draft 2020-12) of the policy file, as written to docs/tresor-policy.schema.json. */
export function tresorPolicyJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(tresorPolicySchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://tresor.example/schemas/tresor-policy.schema.json',
    title: 'Tresor client trust policy (tresor-policy.json)',
  };
}
