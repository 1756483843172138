import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '@tresor/protocol';
import type { AttestationResult, AttestedSubmodule } from './attestation-token.js';
import { appraiseKeyRelease, parseKeyReleasePolicy } from './release-policy.js';
import { parseTenantId, type TenantId } from './tenant-id.js';

const MEASUREMENT = 'ab'.repeat(48);
const policy = parseKeyReleasePolicy({
  tenants: {
    acme: { allowedMeasurements: { measurement: [MEASUREMENT.toUpperCase()] }, residency: 'CH' },
    labs: {
      allowedMeasurements: { mrtd: ['11'], rtmr1: ['22'] },
      residency: 'CH',
      allowedTees: ['tdx', 'sample'],
    },
  },
});
const acme = parseTenantId('acme');
const labs = parseTenantId('labs');

const submod = (overrides: Partial<AttestedSubmodule> = {}): AttestedSubmodule => ({
  name: 'cpu0',
  status: 'affirming',
  tee: 'snp',
  measurements: { measurement: MEASUREMENT },
  residency: 'CH',
  tenant: null,
  ...overrides,
});
const result = (...submodules: AttestedSubmodule[]): AttestationResult => ({
  issuer: 'https://trust.tresor.test',
  issuedAt: new Date(0),
  expiresAt: new Date(1000),
  submodules,
});
/** The code appraisal refuses with, or null when it releases. */
const verdict = (tenant: TenantId, r: AttestationResult): ErrorCode | null => {
  try {
    appraiseKeyRelease(policy, tenant, r);
    return null;
  } catch (err) {
    return (err as { code: ErrorCode }).code;
  }
};
const parseCode = (json: unknown): ErrorCode | null => {
  try {
    parseKeyReleasePolicy(json);
    return null;
  } catch (err) {
    return (err as { code: ErrorCode }).code;
  }
};

describe('key release policy', () => {
  it('releases for an affirming, allowed, Swiss workload (measurements compared case-insensitively)', () => {
    expect(verdict(acme, result(submod()))).toBeNull();
    expect(verdict(acme, result(submod({ tenant: 'acme' })))).toBeNull();
    expect(
      verdict(acme, result(submod(), submod({ name: 'gpu0', tee: 'nvidia', measurements: {} }))),
    ).toBeNull();
    expect(
      verdict(labs, result(submod({ tee: 'tdx', measurements: { mrtd: '11', rtmr1: '22' } }))),
    ).toBeNull();
  });

  it('refuses each violation with its own code', () => {
    const cases: [AttestationResult, ErrorCode][] = [
      [result(submod({ status: 'warning' })), 'ATTESTATION_TOKEN_NOT_AFFIRMING'],
      [
        result(submod(), submod({ name: 'gpu0', status: 'contraindicated', tee: 'nvidia' })),
        'ATTESTATION_TOKEN_NOT_AFFIRMING',
      ],
      [result(submod({ measurements: { measurement: 'cd'.repeat(48) } })), 'MEASUREMENT_NOT_ALLOWED'],
      [result(submod({ measurements: {} })), 'MEASUREMENT_NOT_ALLOWED'],
      [result(submod({ residency: 'DE' })), 'RESIDENCY_VIOLATION'],
      [result(submod({ residency: null })), 'RESIDENCY_VIOLATION'],
      [result(submod({ tee: 'sample' })), 'SAMPLE_TEE_NOT_ALLOWED'],
      [result(submod({ tee: null })), 'POLICY_DENIED'],
      [result(submod({ tee: 'sgx' })), 'POLICY_DENIED'],
      [result(submod({ tenant: 'globex' })), 'POLICY_DENIED'],
    ];
    for (const [r, code] of cases) expect(verdict(acme, r), JSON.stringify(r)).toBe(code);
    expect(verdict(parseTenantId('nobody'), result(submod()))).toBe('POLICY_DENIED');
    expect(verdict(labs, result(submod({ tee: 'tdx', measurements: { mrtd: '11' } })))).toBe(
      'MEASUREMENT_NOT_ALLOWED',
    );
  });

  it('refuses policies that would allow any code, or are malformed', () => {
    const bad: unknown[] = [
      null,
      { tenants: [] },
      { tenants: { acme: { allowedMeasurements: {}, residency: 'CH' } } },
      { tenants: { acme: { allowedMeasurements: { m: [] }, residency: 'CH' } } },
      { tenants: { acme: { allowedMeasurements: { m: ['xyz'] }, residency: 'CH' } } },
      { tenants: { acme: { allowedMeasurements: { m: ['ab'] }, residency: 'Switzerland' } } },
      { tenants: { acme: { allowedMeasurements: { m: ['ab'] }, residency: 'CH', allowedTees: 'snp' } } },
      { tenants: { 'a/b': { allowedMeasurements: { m: ['ab'] }, residency: 'CH' } } },
    ];
    for (const json of bad) {
      expect(parseCode(json), JSON.stringify(json)).toMatch(/CONFIG_INVALID|USAGE_INVALID/);
    }
  });
});
