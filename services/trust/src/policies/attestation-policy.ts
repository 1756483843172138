import { createHash } from 'node:crypto';
import { z } from 'zod';
import { TresorError, isTresorError, type ErrorCode } from '@tresor/protocol';
import { bytesToHex, utf8Encode } from '@tresor/crypto';
import { parseAppraisalPolicy, type AppraisalPolicy } from '@tresor/attestation';
import { adminOperation, type AdminOperation } from '../admin/admin-operation.js';
import { schemaProblem } from '../signed-documents/schema-problem.js';
import type { SignedPolicyFile } from './signed-policy-file.js';

/** JWS `typ` of the attestation policy stored in the state directory. */
export const ATTESTATION_POLICY_TYPE = 'tresor-attestation-policy+jwt';

export type TrustMode = 'development' | 'production';

/**
 * What production mode refuses in an appraisal policy, wherever it comes from (the configuration
 * or the admin API): the sample TEE (software only, it protects nothing), debug TEEs (the host
 * reads their memory), and evidence that does not bind the session's nonce and the TEE's key.
 */
export function productionPolicyProblems(
  policy: Pick<AppraisalPolicy, 'allowSampleTee' | 'allowDebug' | 'requireReportDataBinding'>,
): { readonly field: string; readonly message: string }[] {
  const problems: { field: string; message: string }[] = [];
  if (policy.allowSampleTee) {
    problems.push({ field: 'allowSampleTee', message: 'production mode refuses the sample TEE' });
  }
  if (policy.allowDebug)
    problems.push({ field: 'allowDebug', message: 'production mode refuses debug TEEs' });
  if (!policy.requireReportDataBinding) {
    problems.push({
      field: 'requireReportDataBinding',
      message: 'production mode binds the TEE key and nonce into the evidence',
    });
  }
  return problems;
}

/**
 * Validates an appraisal policy (`parseAppraisalPolicy`, defaults filled in) for a service in
 * `mode`; every refusal carries `code` and names the field.
 */
export function checkAttestationPolicy(value: unknown, mode: TrustMode, code: ErrorCode): AppraisalPolicy {
  let policy: AppraisalPolicy;
  try {
    policy = parseAppraisalPolicy(value);
  } catch (err) {
    throw isTresorError(err) ? new TresorError(code, err.message, { cause: err }) : err;
  }
  const [problem] = mode === 'production' ? productionPolicyProblems(policy) : [];
  if (problem !== undefined) {
    throw new TresorError(code, `appraisal policy field ${problem.field}: ${problem.message}`);
  }
  return policy;
}

/** What the admin API needs of the attestation service: the policy in force, and replacing it. */
export interface AttestationPolicyAdministration {
  readonly policy: AppraisalPolicy;
  replacePolicy(policy: AppraisalPolicy): void;
}

const setSchema = z.strictObject({ policy: z.record(z.string(), z.unknown()) });

/** SHA-256 of the policy's JSON text: what the audit record and the answers name it by. */
function sha256Hex(value: unknown): string {
  return bytesToHex(
    new Uint8Array(
      createHash('sha256')
        .update(utf8Encode(JSON.stringify(value)))
        .digest(),
    ),
  );
}

/**
 * `attestation-policy/set` and `attestation-policy/get`: the appraisal policy (docs/attestation.md)
 * every `/kbs/v0/attest` is judged by. Set replaces it whole; it is validated first
 * (`parseAppraisalPolicy`: a misspelt member is refused, not ignored), production mode refuses a
 * policy that allows the sample TEE, debug TEEs or unbound evidence, and the new policy is signed
 * and stored (survives restarts) before it takes effect. Tokens issued under the old policy stay
 * valid for their short lifetime.
 */
export function attestationPolicyOperations(
  service: AttestationPolicyAdministration,
  mode: TrustMode,
  file?: SignedPolicyFile<AppraisalPolicy>,
): readonly AdminOperation<unknown>[] {
  return [
    adminOperation<AppraisalPolicy>({
      name: 'attestation-policy/set',
      summary:
        'Replace the appraisal policy (validated; production mode refuses the sample TEE, debug TEEs and unbound evidence).',
      mutates: true,
      parse: (value) => {
        const parsed = setSchema.safeParse(value);
        if (!parsed.success) {
          throw new TresorError(
            'INPUT_MALFORMED',
            `the attestation policy request ${schemaProblem(parsed.error)}`,
          );
        }
        return checkAttestationPolicy(parsed.data.policy, mode, 'INPUT_MALFORMED');
      },
      target: () => 'attestation-policy',
      run: async (policy, commit) => {
        const digest = sha256Hex(policy);
        if (file === undefined) {
          await commit({ sha256: digest, policyId: policy.id });
          service.replacePolicy(policy);
          return { id: policy.id, sha256: digest };
        }
        const stored = await file.save(policy, (version) =>
          commit({ sha256: digest, version, policyId: policy.id }),
        );
        service.replacePolicy(policy);
        return { version: stored.version, id: policy.id, sha256: digest };
      },
    }),
    adminOperation({
      name: 'attestation-policy/get',
      summary: 'The appraisal policy in force, defaults filled in.',
      mutates: false,
      parse: () => null,
      target: () => '',
      run: () =>
        Promise.resolve({
          policy: service.policy,
          sha256: sha256Hex(service.policy),
          ...(file === undefined ? {} : { version: file.stored?.version ?? 0 }),
        }),
    }),
  ];
}
