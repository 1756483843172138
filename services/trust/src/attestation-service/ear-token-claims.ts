import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import {
  EAR_PROFILE,
  worseStatus,
  type AppraisalInput,
  type AppraisalResult,
  type EarStatus,
} from '@tresor/attestation';
import type { JWTPayload } from 'jose';
import type { TeePublicKeyJwk } from '../kbs/tee-public-key.js';
import type { AttestedGpu, AttestedIdentity } from './attested-identity.js';

/**
 * The claims of an attestation token. EAR (draft-fv-rats-ear §3) with one submodule per piece of
 * evidence (`cpu0`, then `gpu0`, `gpu1`, …) as Trustee issues it, so Trustee-style relying parties
 * read it:
 *
 * - `ear.status`, `ear.trustworthiness-vector`, `ear.appraisal-policy-id` from the appraisal;
 * - `ear.veraison.annotated-evidence` of cpu0 with `report_data`, `init_data`, `runtime_data_claims`
 *   (where Trustee's KBS looks for `tee-pubkey`) and `init_data_claims`;
 * - Tresor's members, `tresor.<name>` as the KYOK key server reads them: `tresor.tee`,
 *   `tresor.measurements`, `tresor.residency`, `tresor.hardware-ids`, `tresor.tenant`, …
 *
 * Two deliberate differences from Trustee keep tokens small enough for an Authorization header:
 * `runtime_data_claims` carries the SHA-256 of the additional evidence instead of the evidence
 * itself (GPU evidence is tens of KiB), and `init_data_claims` only Tresor's `tresor-*` members.
 */

export interface TokenClaimsInput {
  readonly appraisal: AppraisalResult;
  readonly primary: AppraisalInput;
  readonly gpus: readonly AppraisalInput[];
  readonly teePublicKey: TeePublicKeyJwk;
  readonly nonce: string;
  readonly additionalEvidenceSha256: string;
  readonly initData: {
    readonly digest: string;
    readonly measured: string;
    readonly claims: Readonly<Record<string, string>>;
  } | null;
  readonly hardwareIds: readonly string[];
  readonly residency: string | null;
  readonly tenant: string | null;
  readonly imageDigest: string | null;
  readonly release: { readonly component: string; readonly release: string } | null;
}

function optional(name: string, value: string | null): Record<string, string> {
  return value === null ? {} : { [name]: value };
}

/** The claims to sign (without `iss`, `iat`, `exp`, `jti`, which the token service adds). */
export function earTokenClaims(input: TokenClaimsInput): Record<string, unknown> {
  const { appraisal, primary } = input;
  const submods: Record<string, unknown> = {};
  for (const [name, submod] of Object.entries(appraisal.ear.submods)) {
    const common = {
      'ear.status': submod['ear.status'],
      'ear.trustworthiness-vector': submod['ear.trustworthiness-vector'],
      'ear.appraisal-policy-id': submod['ear.appraisal-policy-id'],
      'tresor.tee': submod['ear.tresor.tee'],
    };
    if (name === 'cpu0') {
      submods[name] = {
        ...common,
        'ear.veraison.annotated-evidence': {
          [primary.tee]: {
            measurements: primary.measurements,
            tcb: primary.tcb,
            debug: primary.debug,
            vmpl: primary.vmpl,
            hardware_ids: primary.hardwareIds,
          },
          report_data: primary.reportData ?? '',
          init_data: input.initData?.measured ?? '',
          runtime_data_claims: {
            'additional-evidence-sha256': input.additionalEvidenceSha256,
            nonce: input.nonce,
            'tee-pubkey': input.teePublicKey,
          },
          init_data_claims: input.initData?.claims ?? null,
        },
        'tresor.insecure': primary.insecure,
        'tresor.debug': primary.debug,
        'tresor.measurements': primary.measurements,
        'tresor.hardware-ids': input.hardwareIds,
        ...optional('tresor.residency', input.residency),
        ...optional('tresor.init-data-hash', input.initData?.digest ?? null),
        ...optional('tresor.tenant', input.tenant),
        ...optional('tresor.image', input.imageDigest),
        ...optional('tresor.component', input.release?.component ?? null),
        ...optional('tresor.release', input.release?.release ?? null),
      };
    } else {
      const index = Number(name.slice(3));
      const gpu = input.gpus[index];
      submods[name] = {
        ...common,
        'tresor.hardware-ids': gpu?.hardwareIds ?? [],
        ...optional('tresor.residency', input.residency),
      };
    }
  }
  return {
    eat_profile: appraisal.ear.eat_profile,
    'ear.verifier-id': appraisal.ear['ear.verifier-id'],
    submods,
  };
}

const status = z.enum(['none', 'affirming', 'warning', 'contraindicated']);
const hex = z.string().regex(/^[0-9a-f]*$/);
const teeKind = z.enum(['snp', 'tdx', 'nvidia', 'sample']);
const teePubkey = z.union([
  z.strictObject({
    kty: z.literal('EC'),
    crv: z.enum(['P-256', 'P-384', 'P-521']),
    alg: z.literal('ECDH-ES+A256KW'),
    x: z.string(),
    y: z.string(),
  }),
  z.strictObject({ kty: z.literal('RSA'), alg: z.literal('RSA-OAEP-256'), n: z.string(), e: z.string() }),
]);

const cpuSchema = z.object({
  'ear.status': status,
  'tresor.tee': teeKind,
  'tresor.insecure': z.boolean(),
  'tresor.debug': z.boolean(),
  'tresor.measurements': z.record(z.string(), hex),
  'tresor.hardware-ids': z.array(hex),
  'tresor.residency': z.string().optional(),
  'tresor.init-data-hash': hex.optional(),
  'tresor.tenant': z.string().optional(),
  'tresor.image': z.string().optional(),
  'tresor.component': z.string().optional(),
  'tresor.release': z.string().optional(),
  'ear.veraison.annotated-evidence': z.object({
    runtime_data_claims: z.object({ 'tee-pubkey': teePubkey }),
  }),
});

const gpuSchema = z.object({
  'ear.status': status,
  'tresor.hardware-ids': z.array(hex),
});

const payloadSchema = z.object({
  eat_profile: z.literal(EAR_PROFILE),
  iat: z.number(),
  exp: z.number(),
  jti: z.string().min(1).max(128),
  submods: z.record(z.string(), z.unknown()),
});

function invalid(why: string): TresorError {
  return new TresorError('ATTESTATION_TOKEN_INVALID', `the attestation token is not a Tresor EAR: ${why}`);
}

/** The identity in a verified token's payload. @throws TresorError ATTESTATION_TOKEN_INVALID */
export function identityFromClaims(payload: JWTPayload): AttestedIdentity {
  const top = payloadSchema.safeParse(payload);
  if (!top.success) throw invalid(top.error.issues[0]?.message ?? 'shape');
  const cpu = cpuSchema.safeParse(top.data.submods.cpu0);
  if (!cpu.success) throw invalid(`cpu0: ${cpu.error.issues[0]?.message ?? 'shape'}`);
  const c = cpu.data;
  let overall: EarStatus = c['ear.status'];
  const gpus: AttestedGpu[] = [];
  for (let i = 0; Object.prototype.hasOwnProperty.call(top.data.submods, `gpu${i}`); i++) {
    const gpu = gpuSchema.safeParse(top.data.submods[`gpu${i}`]);
    if (!gpu.success) throw invalid(`gpu${i}: ${gpu.error.issues[0]?.message ?? 'shape'}`);
    overall = worseStatus(overall, gpu.data['ear.status']);
    gpus.push({ status: gpu.data['ear.status'], deviceId: gpu.data['tresor.hardware-ids'][0] ?? null });
  }
  return {
    tokenId: top.data.jti,
    issuedAt: new Date(top.data.iat * 1000),
    expiresAt: new Date(top.data.exp * 1000),
    status: overall,
    tee: c['tresor.tee'],
    insecure: c['tresor.insecure'],
    debug: c['tresor.debug'],
    measurements: c['tresor.measurements'],
    hardwareIds: c['tresor.hardware-ids'],
    residency: c['tresor.residency'] ?? null,
    initDataHash: c['tresor.init-data-hash'] ?? null,
    tenant: c['tresor.tenant'] ?? null,
    imageDigest: c['tresor.image'] ?? null,
    component: c['tresor.component'] ?? null,
    release: c['tresor.release'] ?? null,
    gpus,
    teePublicKey: c['ear.veraison.annotated-evidence'].runtime_data_claims['tee-pubkey'],
  };
}
