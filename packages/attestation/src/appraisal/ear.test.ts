import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runtimeDataHash } from '@tresor/crypto';
import { readTestdataJson } from '../../../../test/support/testdata.js';
import { createSampleEvidence, SampleSigningKey, sampleVerifier } from '../sample/index.js';
import { appraise, ATTESTATION_VERIFIER_ID } from './appraise.js';
import { EAR_PROFILE, TRUST_CLAIMS, trustTier, worseStatus, type EarStatus } from './ear.js';
import { parseAppraisalPolicy } from './policy.js';

interface EarSample {
  eat_profile: string;
  submods: Record<string, { 'ear.status': EarStatus; 'ear.trustworthiness-vector'?: Record<string, number> }>;
}

/** AR4SI §2.3.1 tiers, written out independently of the implementation. */
function referenceTier(v: number): EarStatus {
  if (v >= -1 && v <= 1) return 'none';
  if ((v >= 2 && v <= 31) || (v >= -32 && v <= -2)) return 'affirming';
  if ((v >= 32 && v <= 95) || (v >= -96 && v <= -33)) return 'warning';
  return 'contraindicated';
}

const NOW = new Date('2025-06-01T12:34:56.789Z');

describe('EAR and AR4SI', () => {
  it('rates every claim value in the tier AR4SI assigns it', () => {
    fc.assert(
      fc.property(fc.integer({ min: -128, max: 127 }), (v) => trustTier(v) === referenceTier(v)),
      { numRuns: 1000 },
    );
    for (let v = -128; v <= 127; v++) expect(trustTier(v)).toBe(referenceTier(v));
  });

  it('orders statuses none < affirming < warning < contraindicated', () => {
    const order: EarStatus[] = ['none', 'affirming', 'warning', 'contraindicated'];
    for (const a of order)
      for (const b of order)
        expect(worseStatus(a, b)).toBe(order[Math.max(order.indexOf(a), order.indexOf(b))]);
  });

  it('derives the statuses of the published EAR samples (Veraison, Trustee) from their vectors', () => {
    const samples = [
      readTestdataJson('protocol/ear/veraison-arc-ear-claims-tv-ok.json'),
      readTestdataJson('protocol/kbs/upstream/ear-claims-example.json'),
    ] as EarSample[];
    for (const sample of samples) {
      for (const submod of Object.values(sample.submods)) {
        const vector = submod['ear.trustworthiness-vector']!;
        expect(Object.keys(vector).sort()).toEqual([...TRUST_CLAIMS].sort());
        const worst = Object.values(vector).reduce<EarStatus>((s, v) => worseStatus(s, trustTier(v)), 'none');
        expect(worst).toBe(submod['ear.status']);
      }
    }
  });

  it('issues an EAR claims-set of the Veraison shape, one submodule per evidence', async () => {
    const key = SampleSigningKey.generate(() => new Uint8Array(32).fill(3));
    const runtimeData = { nonce: 'n' };
    const evidence = createSampleEvidence({
      reportData: await runtimeDataHash(runtimeData),
      svn: 1,
      signingKey: key,
    });
    const result = await sampleVerifier.verify(
      sampleVerifier.parse(evidence),
      { verifyKey: key.verifyKey },
      { now: NOW },
    );
    const appraisal = await appraise(
      [result, result],
      parseAppraisalPolicy({
        id: 'local-dev',
        allowSampleTee: true,
        measurements: 'any',
        hardwareIds: 'any',
      }),
      {
        now: NOW,
        runtimeData,
      },
    );
    const veraison = readTestdataJson('protocol/ear/veraison-arc-ear-claims-tv-ok.json') as EarSample;
    expect(appraisal.ear.eat_profile).toBe(veraison.eat_profile);
    expect(appraisal.ear.eat_profile).toBe(EAR_PROFILE);
    expect(appraisal.ear.iat).toBe(Math.floor(NOW.getTime() / 1000));
    expect(appraisal.ear['ear.verifier-id']).toEqual(ATTESTATION_VERIFIER_ID);
    expect(Object.keys(appraisal.ear.submods)).toEqual(['cpu0', 'cpu1']);
    const submod = appraisal.ear.submods.cpu0!;
    expect(Object.keys(submod['ear.trustworthiness-vector'])).toEqual([...TRUST_CLAIMS]);
    expect(submod).toMatchObject({
      'ear.status': 'warning',
      'ear.appraisal-policy-id': 'local-dev',
      'ear.tresor.tee': 'sample',
      'ear.tresor.insecure': true,
      'ear.tresor.errors': [],
      'ear.trustworthiness-vector': { 'instance-identity': 2, hardware: 32, configuration: 2 },
    });
    expect(Object.keys(submod['ear.tresor.checks'])).toEqual([
      'evidence_signature',
      'sample_tee_allowed',
      'debug_disabled',
      'measurements_allowed',
      'report_data_bound',
      'hardware_id_in_inventory',
    ]);
    expect(JSON.parse(JSON.stringify(appraisal))).toEqual(appraisal);
  });

  it('never lets a policy check hide a hardware check of the same name', async () => {
    const key = SampleSigningKey.generate(() => new Uint8Array(32).fill(4));
    const evidence = createSampleEvidence({ reportData: new Uint8Array(64), svn: 1, signingKey: key });
    const verified = await sampleVerifier.verify(
      sampleVerifier.parse(evidence),
      { verifyKey: key.verifyKey },
      { now: NOW },
    );
    const clash = {
      ...verified,
      valid: false,
      error: 'ATTESTATION_DEBUG_ENABLED' as const,
      checks: {
        ...verified.checks,
        debug_disabled: { ok: false, code: 'ATTESTATION_DEBUG_ENABLED' as const },
      },
    };
    const appraisal = await appraise(
      [clash],
      parseAppraisalPolicy({ allowSampleTee: true, measurements: 'any', hardwareIds: 'any' }),
      {
        now: NOW,
        runtimeData: {},
      },
    );
    const checks = appraisal.ear.submods.cpu0!['ear.tresor.checks'];
    expect(checks.debug_disabled).toEqual({ ok: false, code: 'ATTESTATION_DEBUG_ENABLED' });
    expect(checks.policy_debug_disabled?.ok).toBe(true);
    expect(appraisal.status).toBe('contraindicated');
  });

  it('names the verifier build after the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(ATTESTATION_VERIFIER_ID.build).toBe(`tresor-attestation ${pkg.version}`);
  });
});
