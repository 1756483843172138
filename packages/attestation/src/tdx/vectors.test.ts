import { describe, expect, it } from 'vitest';
import { bytesToHex, utf8Encode } from '@tresor/crypto';
import { readTestdata, readTestdataJson, vectorDirs } from '../../../../test/support/testdata.js';
import { createTdxVerifier, tdxVerifier, type TdxEndorsements } from './verifier.js';

/**
 * Every Intel TDX vector in the shared test data, every case at its verify_at: the outcome, its
 * expected TCB status, each check named in `computed.checks`, the code of the first failure, and
 * the claims field by field. A new vector folder needs no code here.
 */

interface Expected {
  inputs: { quote: string; collateral?: string; intel_root_ca?: string };
  cases: {
    verify_at: string;
    expected_outcome: 'valid' | 'invalid';
    expected_tcb_status?: string | null;
    computed: { failed_checks: string[]; checks: Record<string, boolean>; tcb_status?: string };
  }[];
  claims: Record<string, unknown> & {
    header: { version: number };
    layout: { body_type: number };
    body: { td_attributes_decoded: { debug: boolean } };
    pck: { fmspc: string };
    tcb?: { status: string; advisory_ids: string[] };
  };
}

/** The codes each check fails with (the first failed check decides the result's error). */
const CODES_BY_CHECK: Record<string, readonly string[]> = {
  quote_signature: ['ATTESTATION_SIGNATURE_INVALID'],
  qe_report_signature_by_pck: ['ATTESTATION_QE_REPORT_INVALID'],
  qe_report_data_binds_attestation_key: ['ATTESTATION_QE_REPORT_INVALID'],
  pck_chain_signatures: ['ATTESTATION_CERT_CHAIN_INVALID'],
  pck_chain_anchored_to_intel_root: ['ATTESTATION_ROOT_UNTRUSTED'],
  pck_chain_valid_at_time: ['ATTESTATION_CERT_NOT_YET_VALID', 'ATTESTATION_CERT_EXPIRED'],
  td_not_debug: ['ATTESTATION_DEBUG_ENABLED'],
  tcb_info_current: ['ATTESTATION_COLLATERAL_EXPIRED'],
  qe_identity_current: ['ATTESTATION_COLLATERAL_EXPIRED'],
  crls_current: ['ATTESTATION_COLLATERAL_EXPIRED'],
  tcb_level_found: ['TCB_UNRECOGNISED'],
};

const vectors = vectorDirs('tdx').map((dir) => ({
  dir,
  expected: readTestdataJson(`${dir}/expected.json`) as Expected,
}));

/** The endorsements from expected.json's `inputs` roles (collateral, intel_root_ca). */
function endorsementsOf(dir: string, expected: Expected): TdxEndorsements {
  const { collateral, intel_root_ca: root } = expected.inputs;
  return {
    ...(collateral === undefined ? {} : { collateral: readTestdata(`${dir}/${collateral}`) }),
    ...(root === undefined ? {} : { intelRootCa: readTestdata(`${dir}/${root}`) }),
  };
}

describe('Intel TDX test vectors', () => {
  it('covers quote v4 and v5, both body types, with and without collateral', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(6);
    expect(new Set(vectors.map((v) => v.expected.claims.header.version))).toEqual(new Set([4, 5]));
    expect(new Set(vectors.map((v) => v.expected.claims.layout.body_type))).toEqual(new Set([2, 3]));
    expect(vectors.some((v) => v.expected.inputs.collateral !== undefined)).toBe(true);
    expect(vectors.some((v) => v.expected.inputs.collateral === undefined)).toBe(true);
  });

  for (const { dir, expected } of vectors) {
    describe(dir, () => {
      const quote = tdxVerifier.parse(readTestdata(`${dir}/${expected.inputs.quote}`));
      const endorsements = endorsementsOf(dir, expected);

      for (const c of expected.cases) {
        it(`is ${c.expected_outcome} at ${c.verify_at}, check by check`, async () => {
          const result = await tdxVerifier.verify(quote, endorsements, { now: new Date(c.verify_at) });
          expect(result.tee).toBe('tdx');
          expect(result.valid).toBe(c.expected_outcome === 'valid');
          expect(Object.keys(result.checks).sort()).toEqual(Object.keys(c.computed.checks).sort());
          for (const [name, ok] of Object.entries(c.computed.checks)) {
            expect({ name, ok: result.checks[name]?.ok }).toEqual({ name, ok });
          }
          const firstFailed = c.computed.failed_checks[0];
          if (firstFailed === undefined) {
            expect(result.error).toBeNull();
          } else {
            expect(CODES_BY_CHECK[firstFailed]).toContain(result.error);
            expect(result.checks[firstFailed]?.code).toBe(result.error);
          }
          if (c.computed.tcb_status !== undefined)
            expect(result.claims.tcb?.status).toBe(c.computed.tcb_status);
          if (typeof c.expected_tcb_status === 'string')
            expect(result.claims.tcb?.status).toBe(c.expected_tcb_status);
        });
      }

      it('reproduces every claim field by field', async () => {
        const at = new Date(expected.cases[0]!.verify_at);
        const { claims } = await tdxVerifier.verify(quote, endorsements, { now: at });
        expectSameTree(claims, expected.claims, 'claims');
      });

      it('fills the appraisal input from the same values', async () => {
        const at = new Date(expected.cases[0]!.verify_at);
        const { claims, appraisal } = await tdxVerifier.verify(quote, endorsements, { now: at });
        expect(appraisal).toMatchObject({ tee: 'tdx', insecure: false, vmpl: null, nonce: null });
        expect(appraisal.debug).toBe(expected.claims.body.td_attributes_decoded.debug);
        expect(appraisal.reportData).toBe(claims.body.report_data);
        expect(appraisal.measurements).toMatchObject({
          mrtd: claims.body.mrtd,
          rtmr0: claims.body.rtmr0,
          rtmr3: claims.body.rtmr3,
          mrseam: claims.body.mrseam,
        });
        expect(appraisal.hardwareIds).toHaveLength(1);
        expect(appraisal.hardwareIds[0]).toMatch(/^[0-9a-f]{32}$/);
        expect(appraisal.tcb.fmspc).toBe(expected.claims.pck.fmspc);
        expect(appraisal.tcb.status).toBe(expected.claims.tcb?.status);
        expect(appraisal.tcb.advisoryIds).toEqual(expected.claims.tcb?.advisory_ids);
      });

      it('gives the same verdicts without the cache, and from hex text', async () => {
        const uncached = createTdxVerifier({ cache: null });
        const hex = utf8Encode(`0x${bytesToHex(readTestdata(`${dir}/${expected.inputs.quote}`))}\n`);
        const fromHex = uncached.parse(hex);
        for (const c of expected.cases) {
          const now = new Date(c.verify_at);
          const [cached, fresh] = await Promise.all([
            tdxVerifier.verify(quote, endorsements, { now }),
            uncached.verify(fromHex, endorsements, { now }),
          ]);
          expect(fresh).toEqual(cached);
        }
      });

      it('verifies the same without a supplied root (the root is pinned)', async () => {
        const { intelRootCa: _root, ...withoutRoot } = endorsements;
        const now = new Date(expected.cases[0]!.verify_at);
        const [a, b] = await Promise.all([
          tdxVerifier.verify(quote, endorsements, { now }),
          tdxVerifier.verify(quote, withoutRoot, { now }),
        ]);
        expect(b).toEqual(a);
      });
    });
  }
});

/** Compares two JSON trees key by key, so a failure names the exact claim that differs. */
function expectSameTree(actual: unknown, expected: unknown, path: string): void {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    expect(actual, path).toBeTypeOf('object');
    const a = actual as Record<string, unknown>;
    expect(Object.keys(a).sort(), `${path} keys`).toEqual(Object.keys(expected).sort());
    for (const [key, value] of Object.entries(expected)) expectSameTree(a[key], value, `${path}.${key}`);
    return;
  }
  expect(actual, path).toEqual(expected);
}
