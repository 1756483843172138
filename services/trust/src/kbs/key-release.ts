import { TresorError, isTresorError } from '@tresor/protocol';
import type { ResidencyLookup } from '../attestation-service/attestation-service.js';
import type { AuditSink, AuthenticatedWorkload } from '../context.js';
import type { CedarResourcePolicy } from '../resource-policy/resource-policy.js';
import type { ResourcePath } from '../resources/resource-path.js';
import type { ResourceStore } from '../resources/resource-store.js';
import { encryptForTee, type FlattenedJwe } from './jwe.js';
import { teePublicKeyThumbprint, type TeePublicKey } from './tee-public-key.js';

export interface KeyReleaseServices {
  readonly resources: ResourceStore;
  readonly policy: CedarResourcePolicy;
  readonly residency: ResidencyLookup | undefined;
  readonly audit: AuditSink;
}

/** The audit actor of a workload: the RFC 7638 thumbprint (SHA-256) of the key it attested with. */
export function workloadActorId(teePublicKey: TeePublicKey): string {
  return `tee-key:${teePublicKeyThumbprint(teePublicKey.jwk)}`;
}

/**
 * Releases a resource to an attested workload: the residency inventory is consulted again (hardware
 * withdrawn since the token was issued loses access at once), the Cedar policy must permit it, and
 * the release is recorded in the audit log before the JWE leaves — a release that cannot be recorded
 * does not happen. Denials are recorded too.
 *
 * @throws TresorError RESIDENCY_VIOLATION, POLICY_DENIED, RESOURCE_NOT_FOUND, keystore errors
 */
export async function releaseResource(
  services: KeyReleaseServices,
  workload: AuthenticatedWorkload,
  path: ResourcePath,
): Promise<FlattenedJwe> {
  const { identity } = workload;
  const actor = { type: 'workload' as const, id: workloadActorId(workload.teePublicKey) };
  const target = `resource:${path.text}`;
  const details = {
    tee: identity.tee,
    status: identity.status,
    tokenId: identity.tokenId,
    via: workload.via,
  };
  try {
    if (services.residency !== undefined) services.residency.requireResident(identity.hardwareIds);
    const decision = services.policy.authorize(identity, path);
    if (!decision.allowed) {
      throw new TresorError(
        'POLICY_DENIED',
        `the resource policy does not permit this workload to read ${path.text}`,
      );
    }
    const jwe = await services.resources.release(path, (secret) =>
      encryptForTee(workload.teePublicKey, secret),
    );
    await services.audit.append({
      actor,
      action: 'kbs.resource.release',
      target,
      outcome: 'success',
      details: { ...details, policies: [...decision.policies] },
    });
    return jwe;
  } catch (error) {
    if (isTresorError(error) && error.code !== 'INTERNAL_ERROR') {
      await services.audit
        .append({
          actor,
          action: 'kbs.resource.release',
          target,
          outcome: 'denied',
          details: { ...details, code: error.code },
        })
        .catch(() => undefined);
    }
    throw error;
  }
}
