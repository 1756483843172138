import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import type { AttestedIdentity } from '../attestation-service/attested-identity.js';
import { resourcePath } from '../resources/resource-path.js';
import { CedarResourcePolicy } from './resource-policy.js';

const identity: AttestedIdentity = {
  tokenId: 'token-1',
  issuedAt: new Date(0),
  expiresAt: new Date(300_000),
  status: 'affirming',
  tee: 'snp',
  insecure: false,
  debug: false,
  measurements: { measurement: 'ab'.repeat(48), host_data: '00'.repeat(32) },
  hardwareIds: ['c0ffee'],
  residency: 'CH',
  initDataHash: 'dd'.repeat(32),
  tenant: 'acme',
  imageDigest: `sha256:${'11'.repeat(32)}`,
  component: 'serving',
  release: '1.4.0',
  gpus: [{ status: 'affirming', deviceId: 'feed' }],
  teePublicKey: { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: 'x', y: 'y' },
};
const model = resourcePath('acme', 'model-key', 'llama-3');

function refusal(text: string): string {
  try {
    new CedarResourcePolicy(text);
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? `${err.code}: ${err.message}` : `non-TresorError: ${String(err)}`;
  }
}

describe('Cedar resource policy', () => {
  it('denies everything by default', () => {
    expect(new CedarResourcePolicy().authorize(identity, model)).toEqual({ allowed: false, policies: [] });
    expect(new CedarResourcePolicy('  \n').authorize(identity, model).allowed).toBe(false);
  });

  it('permits by measurement tag, tenant, residency, release and GPU CC attestation', () => {
    const policy = new CedarResourcePolicy(`
      @id("serving-reads-its-tenant-model-keys")
      permit(principal, action == Tresor::Action::"read", resource)
      when {
        principal.status == "affirming" && !principal.debug &&
        principal.hasTag("measurement") && principal.getTag("measurement") == "${'ab'.repeat(48)}" &&
        principal has tenant && principal.tenant == resource.repository &&
        resource.type == "model-key" &&
        principal has residency && principal.residency == "CH" &&
        principal has component && principal.component == "serving" &&
        principal.gpuCount >= 1 && principal.gpusAffirming &&
        principal.hardwareIds.contains("c0ffee")
      };`);
    const decision = policy.authorize(identity, model);
    expect(decision.allowed).toBe(true);
    expect(decision.policies).toHaveLength(1);
    expect(policy.authorize({ ...identity, tenant: 'other' }, model).allowed).toBe(false);
    expect(policy.authorize({ ...identity, tenant: null }, model).allowed).toBe(false);
    expect(policy.authorize({ ...identity, residency: null }, model).allowed).toBe(false);
    expect(policy.authorize({ ...identity, gpus: [] }, model).allowed).toBe(false);
    expect(policy.authorize({ ...identity, measurements: { measurement: '00' } }, model).allowed).toBe(false);
    expect(policy.authorize(identity, resourcePath('acme', 'other', 'llama-3')).allowed).toBe(false);
  });

  it('lets a forbid override any permit', () => {
    const policy = new CedarResourcePolicy(`
      permit(principal, action, resource);
      forbid(principal, action, resource) when { principal.insecure };`);
    expect(policy.authorize(identity, model).allowed).toBe(true);
    expect(policy.authorize({ ...identity, insecure: true }, model).allowed).toBe(false);
  });

  it('denies when a guarded tag is missing, and when evaluation fails (an error is a denial)', () => {
    const guarded = new CedarResourcePolicy(
      'permit(principal, action, resource) when { principal.hasTag("mrtd") && principal.getTag("mrtd") == "00" };',
    );
    expect(guarded.authorize(identity, model).allowed).toBe(false);
    expect(guarded.authorize({ ...identity, measurements: { mrtd: '00' } }, model).allowed).toBe(true);
    // Long overflow is a runtime error in Cedar; the policy still validates.
    const overflowing = new CedarResourcePolicy(
      'permit(principal, action, resource) when { principal.gpuCount + 9223372036854775807 > 0 };',
    );
    expect(overflowing.authorize(identity, model).allowed).toBe(false);
  });

  it.each([
    ['a syntax error', 'permit(principal, action, resource'],
    ['an unknown attribute', 'permit(principal, action, resource) when { principal.colour == "red" };'],
    ['a type error', 'permit(principal, action, resource) when { principal.gpuCount == "one" };'],
    ['an unknown action', 'permit(principal, action == Tresor::Action::"write", resource);'],
    [
      'an optional attribute read without "has"',
      'permit(principal, action, resource) when { principal.tenant == "acme" };',
    ],
    [
      'a tag read without "hasTag"',
      'permit(principal, action, resource) when { principal.getTag("mrtd") == "00" };',
    ],
  ])('refuses %s with RESOURCE_POLICY_INVALID when set', (_what, text) => {
    expect(refusal(text)).toMatch(/^RESOURCE_POLICY_INVALID: /);
  });

  it('keeps the previous policy when a replacement is refused', () => {
    const policy = new CedarResourcePolicy('permit(principal, action, resource);');
    expect(() => {
      policy.replace('permit(');
    }).toThrow();
    expect(policy.authorize(identity, model).allowed).toBe(true);
  });

  it('allows exactly the tenant it names, for any tenant name (property)', () => {
    const policy = new CedarResourcePolicy(
      'permit(principal, action, resource) when { principal has tenant && principal.tenant == resource.repository };',
    );
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
        (tenant, repository) =>
          policy.authorize({ ...identity, tenant }, resourcePath(repository, 'key', 'k')).allowed ===
          (tenant === repository),
      ),
      { numRuns: 1000 },
    );
  });

  it('answers a repeated request from the decision cache exactly as a fresh evaluation would (property)', () => {
    const text =
      'permit(principal, action, resource) when { principal has tenant && principal.tenant == resource.repository && !principal.insecure };';
    const cached = new CedarResourcePolicy(text);
    fc.assert(
      fc.property(
        fc.constantFrom('acme', 'other', 'x'),
        fc.boolean(),
        fc.constantFrom('acme', 'other'),
        (tenant, insecure, repository) => {
          const who = { ...identity, tenant, insecure };
          const path = resourcePath(repository, 'key', 'k');
          const fresh = new CedarResourcePolicy(text).authorize(who, path);
          expect(cached.authorize(who, path)).toEqual(fresh);
          expect(cached.authorize(who, path)).toEqual(fresh);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('forgets cached decisions when the policy is replaced', () => {
    const policy = new CedarResourcePolicy('permit(principal, action, resource);');
    expect(policy.authorize(identity, model).allowed).toBe(true);
    policy.replace('forbid(principal, action, resource);');
    expect(policy.authorize(identity, model).allowed).toBe(false);
    policy.replace('');
    expect(policy.authorize(identity, model)).toEqual({ allowed: false, policies: [] });
    policy.replace('permit(principal, action, resource) when { principal.insecure };');
    expect(policy.authorize(identity, model).allowed).toBe(false);
    expect(policy.authorize({ ...identity, insecure: true }, model).allowed).toBe(true);
  });

  it('does not let a policy single out one attestation by its random token id', () => {
    const policy = new CedarResourcePolicy(
      'permit(principal == Tresor::Workload::"token-1", action, resource);',
    );
    expect(policy.authorize(identity, model).allowed).toBe(false);
    expect(policy.authorize({ ...identity, tokenId: 'token-2' }, model).allowed).toBe(false);
  });
});
