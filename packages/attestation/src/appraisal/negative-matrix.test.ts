import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '@tresor/protocol';
import { runtimeDataHash } from '@tresor/crypto';
import { readTestdata, readTestdataJson } from '../../../../test/support/testdata.js';
import { testdataVector } from '../conformance/testdata-vectors.js';
import { createSampleEvidence, SampleSigningKey, sampleVerifier } from '../sample/index.js';
import type { VerificationResult } from '../types.js';
import { verifyAttestation } from '../verify-attestation.js';
import { appraise, type AppraisalContext, type AppraisalResult } from './appraise.js';
import { GPU_EVIDENCE_MEMBER } from './gpu-binding.js';
import { parseAppraisalPolicy, type AppraisalPolicyInput } from './policy.js';

/**
 * The negative matrix at appraisal level, across TEEs, derived at test time from the real vectors:
 * every rule refuses with its own code, and the same evidence passes when only that rule is
 * relaxed, so the code is proven to come from that rule. (Cryptographic negatives — flipped bits,
 * wrong roots, expired leaves, CRLs — are the per-TEE verifiers' tests.)
 */

async function verified(id: string, at?: string): Promise<VerificationResult> {
  const dir = `attestation/${id}`;
  const vector = testdataVector(readTestdataJson(`${dir}/expected.json`), (file) =>
    readTestdata(`${dir}/${file}`),
  );
  const now = at === undefined ? vector.cases.find((c) => c.valid)!.verifyAt : new Date(at);
  return (await verifyAttestation({ files: vector.files, now })).result;
}

/** Every rule that a given test does not exercise, relaxed: only hardware verification remains. */
const RELAXED: AppraisalPolicyInput = {
  id: 'relaxed',
  measurements: 'any',
  hardwareIds: 'any',
  requireReportDataBinding: false,
  requireGpuBinding: false,
  tcb: { requireStatus: false },
  vmpls: [0, 1, 2, 3],
};

const NOW = new Date('2025-06-01T00:00:00Z');

async function run(
  results: readonly VerificationResult[],
  policy: AppraisalPolicyInput,
  context: Partial<AppraisalContext> = {},
): Promise<AppraisalResult> {
  return appraise(results, parseAppraisalPolicy({ ...RELAXED, ...policy }), { now: NOW, ...context });
}

function expectRefused(result: AppraisalResult, code: ErrorCode, check: string): void {
  expect({ status: result.status, error: result.error, errors: result.errors }).toEqual({
    status: 'contraindicated',
    error: code,
    errors: [code],
  });
  const checks = Object.values(result.ear.submods).map((s) => s['ear.tresor.checks'][check]);
  expect(checks.some((c) => c !== undefined && !c.ok && c.code === code)).toBe(true);
}

function expectAffirmed(result: AppraisalResult): void {
  expect({ status: result.status, errors: result.errors }).toEqual({ status: 'affirming', errors: [] });
}

const sampleKey = SampleSigningKey.generate(() => new Uint8Array(32).fill(42));

async function sampleResult(runtimeData: unknown): Promise<VerificationResult> {
  const evidence = createSampleEvidence({
    reportData: await runtimeDataHash(runtimeData),
    svn: 1,
    signingKey: sampleKey,
  });
  return sampleVerifier.verify(
    sampleVerifier.parse(evidence),
    { verifyKey: sampleKey.verifyKey },
    { now: NOW },
  );
}

describe('appraisal negative matrix (real vectors)', () => {
  it('hardware-valid evidence of every TEE is affirmed by a policy with every rule relaxed', async () => {
    for (const id of [
      'snp/azure-genoa-v3',
      'snp/virtee-milan-v2',
      'tdx/azure-v4',
      'tdx/dcap-qvl-v4-uptodate',
      'nvidia/nvtrust-hopper-sample',
    ]) {
      expectAffirmed(await run([await verified(id)], {}));
    }
  });

  it('hardware failures stay refusals whatever the policy allows', async () => {
    const expired = await verified('snp/gsg-milan-v2', '2030-01-01T00:00:00Z');
    const result = await run([expired], { allowDebug: true });
    expect(result.status).toBe('contraindicated');
    expect(result.error).toBe('ATTESTATION_CERT_EXPIRED');
    expect(Object.values(result.ear.submods)[0]!['ear.trustworthiness-vector'].hardware).toBe(99);
  });

  it('debug: SNP policy DEBUG → ATTESTATION_DEBUG_ENABLED', async () => {
    const snp = await verified('snp/gsg-milan-v2');
    expect(snp.valid).toBe(true);
    expectRefused(await run([snp], {}), 'ATTESTATION_DEBUG_ENABLED', 'debug_disabled');
    // Allowed by the policy, it is accepted but never affirming.
    const allowed = await run([snp], { allowDebug: true });
    expect({ status: allowed.status, errors: allowed.errors }).toEqual({ status: 'warning', errors: [] });
    expect(Object.values(allowed.ear.submods)[0]!['ear.trustworthiness-vector']).toMatchObject({
      configuration: 32,
      'runtime-opaque': 0,
    });
  });

  it('debug: TDX attribute DEBUG → ATTESTATION_DEBUG_ENABLED', async () => {
    const tdx = await verified('tdx/trustee-v4-debug', '2025-06-01T00:00:00Z');
    const result = await run([tdx], {});
    expect(result.error).toBe('ATTESTATION_DEBUG_ENABLED');
    expect(result.errors).toEqual(['ATTESTATION_DEBUG_ENABLED']);
    expect(result.ear.submods.cpu0!['ear.tresor.checks'].debug_disabled?.ok).toBe(false);
  });

  it('measurement not in the allow-list → MEASUREMENT_NOT_ALLOWED (SNP, TDX, NVIDIA)', async () => {
    const cases = [
      { id: 'snp/azure-genoa-v3', tee: 'snp', component: 'measurement' },
      { id: 'tdx/dcap-qvl-v4-uptodate', tee: 'tdx', component: 'mrtd' },
      { id: 'nvidia/nvtrust-hopper-sample', tee: 'nvidia', component: 'gpu0.block2' },
    ] as const;
    for (const c of cases) {
      const result = await verified(c.id);
      const actual = result.appraisal.measurements[c.component]!;
      expect(actual).toMatch(/^[0-9a-f]{96}$/);
      const other = (actual.startsWith('00') ? '11' : '00') + actual.slice(2);
      expectRefused(
        await run([result], { measurements: { [c.tee]: { [c.component]: [other] } } }),
        'MEASUREMENT_NOT_ALLOWED',
        'measurements_allowed',
      );
      expectRefused(
        await run([result], { measurements: { [c.tee]: { absent_register: [actual] } } }),
        'MEASUREMENT_NOT_ALLOWED',
        'measurements_allowed',
      );
      expectRefused(
        await run([result], { measurements: { sample: { measurement: [actual] } } }),
        'MEASUREMENT_NOT_ALLOWED',
        'measurements_allowed',
      );
      const allowed = await run([result], {
        measurements: { [c.tee]: { [c.component]: [other, actual.toUpperCase()] } },
      });
      expectAffirmed(allowed);
      expect(Object.values(allowed.ear.submods)[0]!['ear.trustworthiness-vector'].executables).toBe(3);
    }
  });

  it('report_data not matching the runtime data → REPORT_DATA_MISMATCH', async () => {
    const snp = await verified('snp/azure-milan-v3-a');
    const policy = { requireReportDataBinding: true };
    expectRefused(
      await run([snp], policy, { runtimeData: { nonce: 'abc' } }),
      'REPORT_DATA_MISMATCH',
      'report_data_bound',
    );
    expectRefused(await run([snp], policy), 'REPORT_DATA_MISMATCH', 'report_data_bound');
    const tdx = await verified('tdx/azure-v4');
    expectRefused(
      await run([tdx], policy, { runtimeData: { nonce: 'abc' } }),
      'REPORT_DATA_MISMATCH',
      'report_data_bound',
    );
    // The rule itself, shown passing: sample evidence whose report data binds the runtime data.
    const runtimeData = { nonce: 'abc', 'tee-pubkey': { kty: 'OKP', crv: 'X25519', x: 'AAAA' } };
    const sample = await sampleResult(runtimeData);
    const bound = await run([sample], { ...policy, allowSampleTee: true }, { runtimeData });
    expect(bound.errors).toEqual([]);
    expect(bound.ear.submods.cpu0!['ear.tresor.checks'].report_data_bound?.ok).toBe(true);
    expectRefused(
      await run(
        [sample],
        { ...policy, allowSampleTee: true },
        { runtimeData: { ...runtimeData, nonce: 'abd' } },
      ),
      'REPORT_DATA_MISMATCH',
      'report_data_bound',
    );
  });

  it('stale evidence → EVIDENCE_STALE', async () => {
    const snp = await verified('snp/azure-genoa-v3');
    const policy = { maxEvidenceAgeSeconds: 300 };
    expectRefused(
      await run([snp], policy, { evidenceTime: new Date(NOW.getTime() - 301_000) }),
      'EVIDENCE_STALE',
      'evidence_fresh',
    );
    expectRefused(await run([snp], policy), 'EVIDENCE_STALE', 'evidence_fresh');
    expectRefused(
      await run([snp], policy, { evidenceTime: new Date(NOW.getTime() + 3_600_000) }),
      'EVIDENCE_STALE',
      'evidence_fresh',
    );
    expectAffirmed(await run([snp], policy, { evidenceTime: new Date(NOW.getTime() - 299_000) }));
  });

  it('unknown chip id → RESIDENCY_VIOLATION (SNP chip id, TDX PPID, NVIDIA device ids, VLEK without chip id)', async () => {
    for (const id of ['snp/virtee-milan-v2', 'tdx/azure-v4', 'nvidia/nvtrust-ppcie-8gpu']) {
      const result = await verified(id);
      expect(result.appraisal.hardwareIds.length).toBeGreaterThan(0);
      expectRefused(
        await run([result], { hardwareIds: ['00112233'] }),
        'RESIDENCY_VIOLATION',
        'hardware_id_in_inventory',
      );
      expectRefused(
        await run([result], { hardwareIds: result.appraisal.hardwareIds.slice(1) }),
        'RESIDENCY_VIOLATION',
        'hardware_id_in_inventory',
      );
      expectAffirmed(await run([result], { hardwareIds: [...result.appraisal.hardwareIds, '00112233'] }));
    }
    const vlek = await verified('snp/trustee-milan-vlek-v3');
    expectRefused(
      await run([vlek], { hardwareIds: ['00112233'] }),
      'RESIDENCY_VIOLATION',
      'hardware_id_in_inventory',
    );
  });

  it('GPU evidence not bound to the CPU report → GPU_EVIDENCE_NOT_BOUND', async () => {
    const gpus = await verified('nvidia/nvtrust-ppcie-8gpu');
    const hashes = (gpus.claims as { gpus: { evidence_sha256: string }[] }).gpus.map(
      (g) => g.evidence_sha256,
    );
    expect(hashes).toHaveLength(8);
    const runtimeData = { nonce: 'n', [GPU_EVIDENCE_MEMBER]: hashes };
    const cpu = await sampleResult(runtimeData);
    const policy = { allowSampleTee: true, requireGpuBinding: true, requireReportDataBinding: true };
    const bound = await run([cpu, gpus], policy, { runtimeData });
    expect(bound.errors).toEqual([]);
    expect(bound.ear.submods.gpu0!['ear.tresor.checks'].gpu_evidence_bound?.ok).toBe(true);
    expect(bound.ear.submods.gpu0!['ear.trustworthiness-vector']['sourced-data']).toBe(2);

    // One GPU missing from the list: the CPU report binds runtime data that lists only seven.
    const seven = { nonce: 'n', [GPU_EVIDENCE_MEMBER]: hashes.slice(1) };
    expectRefused(
      await run([await sampleResult(seven), gpus], policy, { runtimeData: seven }),
      'GPU_EVIDENCE_NOT_BOUND',
      'gpu_evidence_bound',
    );
    // The list is right, but the CPU report binds other runtime data.
    const other = await sampleResult({ nonce: 'n' });
    const unbound = await run([other, gpus], { ...policy, requireReportDataBinding: false }, { runtimeData });
    expect(unbound.errors).toEqual(['GPU_EVIDENCE_NOT_BOUND']);
    // The CPU evidence binds the list but fails verification itself (signed by another key).
    const forged = await sampleVerifier.verify(
      sampleVerifier.parse(
        createSampleEvidence({
          reportData: await runtimeDataHash(runtimeData),
          svn: 1,
          signingKey: SampleSigningKey.generate(),
        }),
      ),
      { verifyKey: sampleKey.verifyKey },
      { now: NOW },
    );
    const forgedResult = await run([forged, gpus], policy, { runtimeData });
    expect(forgedResult.ear.submods.gpu0!['ear.tresor.errors']).toEqual(['GPU_EVIDENCE_NOT_BOUND']);
    // GPU evidence alone, with no CPU report to vouch for it.
    expectRefused(
      await run([gpus], { requireGpuBinding: true }),
      'GPU_EVIDENCE_NOT_BOUND',
      'gpu_evidence_bound',
    );
    // Real CPU evidence cannot bind this runtime data (its report data is someone else's).
    const snp = await verified('snp/azure-genoa-v3');
    const real = await run([snp, gpus], { requireGpuBinding: true }, { runtimeData });
    expect(real.errors).toEqual(['GPU_EVIDENCE_NOT_BOUND']);
  });

  it('VMPL not allowed → ATTESTATION_VMPL_NOT_ALLOWED', async () => {
    const vmpl1 = await verified('snp/trustee-milan-vlek-v3');
    expect(vmpl1.appraisal.vmpl).toBe(1);
    expectRefused(await run([vmpl1], { vmpls: [0] }), 'ATTESTATION_VMPL_NOT_ALLOWED', 'vmpl_allowed');
    expectAffirmed(await run([vmpl1], { vmpls: [0, 1] }));
  });

  it('TCB below the policy minimum → TCB_OUT_OF_DATE', async () => {
    const snp = await verified('snp/virtee-milan-v2'); // reported TCB: bootloader 3, tee 0, snp 8, microcode 115
    expect(snp.appraisal.tcb).toMatchObject({
      product: 'Milan',
      bootloader: 3,
      tee: 0,
      snp: 8,
      microcode: 115,
    });
    const minimum = (microcode: number, product = 'Milan') => ({
      tcb: {
        requireStatus: false,
        minimum: [{ tee: 'snp' as const, product, components: { bootloader: 3, snp: 8, microcode } }],
      },
    });
    expectRefused(await run([snp], minimum(116)), 'TCB_OUT_OF_DATE', 'tcb_minimum');
    expectAffirmed(await run([snp], minimum(115)));
    // A minimum only for another product cannot decide: refused.
    expectRefused(await run([snp], minimum(1, 'Genoa')), 'TCB_OUT_OF_DATE', 'tcb_minimum');
    // TDX: the collateral's status must be accepted ("latest from collateral": UpToDate).
    const tdx = await verified('tdx/dcap-qvl-v4-uptodate');
    expect(tdx.appraisal.tcb.status).toBe('UpToDate');
    expectAffirmed(await run([tdx], { tcb: { requireStatus: true } }));
    const outOfDate = {
      ...tdx,
      appraisal: { ...tdx.appraisal, tcb: { ...tdx.appraisal.tcb, status: 'OutOfDate' } },
    };
    expectRefused(
      await run([outOfDate], { tcb: { requireStatus: true } }),
      'TCB_OUT_OF_DATE',
      'tcb_status_accepted',
    );
    const accepted = await run([outOfDate], { tcb: { acceptedStatuses: ['UpToDate', 'OutOfDate'] } });
    expect({ status: accepted.status, errors: accepted.errors }).toEqual({ status: 'warning', errors: [] });
    const revoked = {
      ...tdx,
      appraisal: { ...tdx.appraisal, tcb: { ...tdx.appraisal.tcb, status: 'Revoked' } },
    };
    expectRefused(
      await run([revoked], { tcb: { acceptedStatuses: ['Revoked'] } }),
      'TCB_REVOKED',
      'tcb_status_accepted',
    );
  });

  it('TDX without collateral under the default policy → ATTESTATION_COLLATERAL_MISSING; no matching level → TCB_UNRECOGNISED', async () => {
    const tdx = await verified('tdx/azure-v4');
    expectRefused(
      await run([tdx], { tcb: { requireStatus: true } }),
      'ATTESTATION_COLLATERAL_MISSING',
      'tcb_status_accepted',
    );
    const outdated = await verified('tdx/dcap-qvl-v5-outdated', '2026-03-01T00:00:00Z');
    const result = await run([outdated], { tcb: { requireStatus: true } });
    expect(result.error).toBe('TCB_UNRECOGNISED');
    expect(result.ear.submods.cpu0!['ear.tresor.checks'].tcb_status_accepted?.code).toBe('TCB_UNRECOGNISED');
  });

  it('launch flags the policy forbids → ATTESTATION_POLICY_VIOLATION', async () => {
    const snp = await verified('snp/azure-genoa-v3');
    expect(snp.appraisal.flags.smt_allowed).toBe(true);
    expectRefused(
      await run([snp], { launchFlags: { snp: { smt_allowed: false } } }),
      'ATTESTATION_POLICY_VIOLATION',
      'launch_flags',
    );
    expectRefused(
      await run([snp], { launchFlags: { snp: { no_such_flag: false } } }),
      'ATTESTATION_POLICY_VIOLATION',
      'launch_flags',
    );
    expectAffirmed(await run([snp], { launchFlags: { snp: { smt_allowed: true, migrate_ma: false } } }));
  });

  it('sample TEE under the default policy → SAMPLE_TEE_NOT_ALLOWED; allowed, it is never better than warning', async () => {
    const runtimeData = { nonce: 'n' };
    const sample = await sampleResult(runtimeData);
    const refused = await appraise([sample], parseAppraisalPolicy({}), { now: NOW, runtimeData });
    expect(refused.status).toBe('contraindicated');
    expect(refused.error).toBe('SAMPLE_TEE_NOT_ALLOWED');
    expect(refused.ear.submods.cpu0!['ear.tresor.checks'].sample_tee_allowed).toMatchObject({
      ok: false,
      code: 'SAMPLE_TEE_NOT_ALLOWED',
    });
    const allowed = await appraise(
      [sample],
      parseAppraisalPolicy({ allowSampleTee: true, measurements: 'any', hardwareIds: 'any' }),
      { now: NOW, runtimeData },
    );
    expect({ status: allowed.status, errors: allowed.errors }).toEqual({ status: 'warning', errors: [] });
    expect(allowed.ear.submods.cpu0!['ear.tresor.insecure']).toBe(true);
  });

  it('a policy without reference values or residency inventory refuses until it lists or waives them', async () => {
    const snp = await verified('snp/azure-genoa-v3');
    const noMeasurements = await appraise(
      [snp],
      parseAppraisalPolicy({ ...RELAXED, measurements: undefined }),
      { now: NOW },
    );
    expectRefused(noMeasurements, 'MEASUREMENT_NOT_ALLOWED', 'measurements_allowed');
    const noInventory = await appraise([snp], parseAppraisalPolicy({ ...RELAXED, hardwareIds: undefined }), {
      now: NOW,
    });
    expectRefused(noInventory, 'RESIDENCY_VIOLATION', 'hardware_id_in_inventory');
    // Waived, the measurements are accepted but never affirmed.
    const waived = await run([snp], {});
    expect(waived.ear.submods.cpu0!['ear.trustworthiness-vector'].executables).toBe(0);
  });

  it('the default policy refuses every real vector until it is told what to expect', async () => {
    for (const id of ['snp/azure-genoa-v3', 'tdx/dcap-qvl-v4-uptodate', 'nvidia/nvtrust-hopper-sample']) {
      const result = await appraise([await verified(id)], parseAppraisalPolicy({}), { now: NOW });
      expect(result.status).toBe('contraindicated');
    }
  });

  it('a result without evidence cannot be appraised', async () => {
    await expect(appraise([], parseAppraisalPolicy({}), { now: NOW })).rejects.toMatchObject({
      code: 'USAGE_INVALID',
    });
  });
});
