import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { SampleSigningKey } from '@tresor/attestation';
import { loadTresorPolicy, parseTresorPolicy, tresorPolicyJsonSchema } from './policy.js';

const jwk = {
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
};
const minimal = { version: 1, trustServiceKeys: [{ jwk }], trustSignedReferenceValues: true };

function code(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return e instanceof TresorError ? e.code : 'OTHER';
  }
}

describe('tresor-policy.json', () => {
  it('fills fail-closed defaults: CH only, no sample TEE, receipts required, 300 s evidence age', () => {
    const p = parseTresorPolicy(minimal);
    expect(p).toMatchObject({
      jurisdictions: ['CH'],
      allowSampleTee: false,
      requireReceipts: true,
      requireGpu: false,
      maxEvidenceAgeSeconds: 300,
      releases: [],
      measurements: [],
    });
  });

  it('accepts pinned releases, thumbprints, measurements and sample keys', () => {
    const key = SampleSigningKey.generate();
    const p = parseTresorPolicy({
      version: 1,
      trustServiceKeys: [{ thumbprint: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' }],
      releases: [{ component: 'gateway', release: '1.4.0' }],
      measurements: [{ component: 'serving', tee: 'snp', measurements: { measurement: ['AB'.repeat(48)] } }],
      allowSampleTee: true,
      sampleVerifyKeys: [key.verifyKey.hex, key.verifyKey.toJwk()],
    });
    expect(p.sampleVerifyKeys.map((k) => k.hex)).toEqual([key.verifyKey.hex, key.verifyKey.hex]);
    expect(p.measurements[0]?.measurements.measurement).toEqual(['ab'.repeat(48)]);
  });

  it.each([
    ['an unknown member (typo)', { ...minimal, allowSampleTees: true }, /allowSampleTees/],
    ['no pinned key', { ...minimal, trustServiceKeys: [] }, /trustServiceKeys/],
    ['a private key pinned', { ...minimal, trustServiceKeys: [{ jwk: { ...jwk, d: 'x' } }] }, /private/],
    ['trusting no code', { version: 1, trustServiceKeys: [{ jwk }] }, /trustSignedReferenceValues/],
    ['sample TEE without its key', { ...minimal, allowSampleTee: true }, /sampleVerifyKeys/],
    ['a bad sample key', { ...minimal, sampleVerifyKeys: ['zz'] }, /sampleVerifyKeys/],
    ['a lower-case jurisdiction', { ...minimal, jurisdictions: ['ch'] }, /jurisdictions/],
    ['version 2', { ...minimal, version: 2 }, /version/],
    ['a zero evidence age', { ...minimal, maxEvidenceAgeSeconds: 0 }, /maxEvidenceAgeSeconds/],
  ])('refuses %s with TRUST_POLICY_INVALID naming the member', (_name, value, member) => {
    expect(() => parseTresorPolicy(value)).toThrow(member);
    expect(code(() => parseTresorPolicy(value))).toBe('TRUST_POLICY_INVALID');
  });

  it('refuses non-JSON files with TRUST_POLICY_INVALID', () => {
    expect(code(() => loadTresorPolicy(new TextEncoder().encode('{')))).toBe('TRUST_POLICY_INVALID');
  });

  it('answers any JSON value with a policy or TRUST_POLICY_INVALID, never another error (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const c = code(() => parseTresorPolicy(value));
        expect(c === null || c === 'TRUST_POLICY_INVALID').toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('docs/tresor-policy.schema.json is the current schema export', () => {
    const committed = JSON.parse(
      readFileSync(new URL('../../../docs/tresor-policy.schema.json', import.meta.url), 'utf8'),
    ) as unknown;
    expect(committed).toEqual(JSON.parse(JSON.stringify(tresorPolicyJsonSchema())));
  });
});
