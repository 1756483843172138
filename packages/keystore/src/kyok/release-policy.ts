import { TresorError } from '@tresor/protocol';
import type { AttestationResult } from './attestation-token.js';
import { parseTenantId, type TenantId } from './tenant-id.js';

/**
 * The customer's key release policy, per tenant: which workloads may have the tenant's keys used
 * for them. The key server applies it to every wrap, unwrap and sign, after the token verified.
 *
 *   { "tenants": { "acme": {
 *       "allowedMeasurements": { "measurement": ["<96 hex chars>", ...] },
 *       "residency": "CH",
 *       "allowedTees": ["snp", "tdx", "nvidia"] } } }
 *
 * A submodule attested for a tenant (`tresor.tenant`) releases only that tenant's keys. Every
 * measurement name listed must be reported by some submodule, with an allowed value, and no
 * submodule may report a listed name with another value. At least one name is required: a policy
 * that accepts any code is refused as a configuration error rather than silently allowing all.
 */
export interface TenantPolicy {
  readonly allowedMeasurements: Readonly<Record<string, readonly string[]>>;
  /** ISO 3166-1 alpha-2; every submodule must be attested in this country. */
  readonly residency: string;
  readonly allowedTees: readonly string[];
}

export interface KeyReleasePolicy {
  readonly tenants: ReadonlyMap<TenantId, TenantPolicy>;
}

const DEFAULT_TEES = ['snp', 'tdx', 'nvidia'];

export function parseKeyReleasePolicy(json: unknown): KeyReleasePolicy {
  const bad = (detail: string): TresorError =>
    new TresorError('CONFIG_INVALID', `key release policy: ${detail}`);
  if (typeof json !== 'object' || json === null) throw bad('not a JSON object');
  const tenantsJson = (json as Record<string, unknown>).tenants;
  if (typeof tenantsJson !== 'object' || tenantsJson === null || Array.isArray(tenantsJson)) {
    throw bad('"tenants" must be an object of tenant id → policy');
  }
  const tenants = new Map<TenantId, TenantPolicy>();
  for (const [tenant, value] of Object.entries(tenantsJson as Record<string, unknown>)) {
    const id = parseTenantId(tenant);
    if (typeof value !== 'object' || value === null) throw bad(`tenant ${tenant}: not an object`);
    const o = value as Record<string, unknown>;
    const measurements = o.allowedMeasurements;
    if (typeof measurements !== 'object' || measurements === null || Array.isArray(measurements)) {
      throw bad(`tenant ${tenant}: allowedMeasurements must be an object of name → hex values`);
    }
    const allowedMeasurements: Record<string, readonly string[]> = {};
    for (const [name, values] of Object.entries(measurements as Record<string, unknown>)) {
      if (!Array.isArray(values) || values.length === 0)
        throw bad(`tenant ${tenant}: ${name} needs a non-empty list`);
      allowedMeasurements[name] = values.map((v) => {
        if (typeof v !== 'string' || !/^[0-9a-fA-F]{2,}$/.test(v))
          throw bad(`tenant ${tenant}: ${name} has a non-hex value`);
        return v.toLowerCase();
      });
    }
    if (Object.keys(allowedMeasurements).length === 0) throw bad(`tenant ${tenant}: no allowed measurements`);
    if (typeof o.residency !== 'string' || !/^[A-Z]{2}$/.test(o.residency)) {
      throw bad(`tenant ${tenant}: residency must be an ISO 3166-1 alpha-2 code such as "CH"`);
    }
    const tees = o.allowedTees ?? DEFAULT_TEES;
    if (!Array.isArray(tees) || tees.some((t) => typeof t !== 'string'))
      throw bad(`tenant ${tenant}: allowedTees must be strings`);
    tenants.set(id, { allowedMeasurements, residency: o.residency, allowedTees: tees as string[] });
  }
  return { tenants };
}

/** Applies the tenant's policy to a verified attestation result; returns only if the key may be used. */
export function appraiseKeyRelease(
  policy: KeyReleasePolicy,
  tenant: TenantId,
  result: AttestationResult,
): void {
  const rules = policy.tenants.get(tenant);
  if (rules === undefined) {
    throw new TresorError('POLICY_DENIED', `the key server has no release policy for tenant ${tenant}`);
  }
  for (const submod of result.submodules) {
    if (submod.status !== 'affirming') {
      throw new TresorError(
        'ATTESTATION_TOKEN_NOT_AFFIRMING',
        `submodule ${submod.name} is ${submod.status}`,
      );
    }
    if (submod.tee === null || !rules.allowedTees.includes(submod.tee)) {
      throw new TresorError(
        submod.tee === 'sample' ? 'SAMPLE_TEE_NOT_ALLOWED' : 'POLICY_DENIED',
        `submodule ${submod.name} runs on TEE "${submod.tee ?? 'unknown'}", which tenant ${tenant}'s policy does not allow`,
      );
    }
    if (submod.tenant !== null && submod.tenant !== tenant) {
      throw new TresorError(
        'POLICY_DENIED',
        `submodule ${submod.name} was attested for tenant ${submod.tenant}, not ${tenant}`,
      );
    }
    if (submod.residency !== rules.residency) {
      throw new TresorError(
        'RESIDENCY_VIOLATION',
        `submodule ${submod.name} is attested in "${submod.residency ?? 'unknown'}", not ${rules.residency}`,
      );
    }
    for (const [name, value] of Object.entries(submod.measurements)) {
      const allowed = rules.allowedMeasurements[name];
      if (allowed !== undefined && !allowed.includes(value)) {
        throw new TresorError(
          'MEASUREMENT_NOT_ALLOWED',
          `submodule ${submod.name}: ${name} ${value} is not allowed`,
        );
      }
    }
  }
  for (const name of Object.keys(rules.allowedMeasurements)) {
    if (!result.submodules.some((s) => s.measurements[name] !== undefined)) {
      throw new TresorError(
        'MEASUREMENT_NOT_ALLOWED',
        `the token reports no ${name}, which tenant ${tenant}'s policy requires`,
      );
    }
  }
}
