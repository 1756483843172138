/**
 * The Cedar schema resource policies are validated against (strict mode), so a misspelt attribute
 * or a type error is refused when the policy is set, not silently false at release time.
 *
 * - principal `Tresor::Workload`, one per attestation token; its attributes are the attested
 *   identity (docs/trust.md lists them) and its tags the measurements by name
 *   (`principal.getTag("measurement")`, `principal.getTag("mrtd")`, …);
 * - action `Tresor::Action::"read"`: the KBS resource GET;
 * - resource `Tresor::Resource::"<repository>/<type>/<tag>"` with the three path segments.
 */
export const RESOURCE_POLICY_SCHEMA = `namespace Tresor {
  entity Workload = {
    tee: String,
    status: String,
    insecure: Bool,
    debug: Bool,
    hardwareIds: Set<String>,
    gpuCount: Long,
    gpusAffirming: Bool,
    residency?: String,
    tenant?: String,
    initDataHash?: String,
    imageDigest?: String,
    component?: String,
    release?: String,
  } tags String;
  entity Resource = { repository: String, type: String, tag: String };
  action read appliesTo { principal: Workload, resource: Resource };
}`;
