import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startTrustFixture, type TrustFixture } from '../../../../test/support/trust-fixture.js';
import { sampleAttester, type KbsAttester } from './attester.js';
import type { PrimaryTee } from './protocol.js';

/**
 * The KBS flow replayed with evidence recorded on real hardware (testdata/attestation), the clock
 * fixed to each vector's `verify_at`. Recorded evidence cannot bind this session's fresh nonce and
 * key, so with the production rule (report data must bind them) it is refused with
 * REPORT_DATA_MISMATCH — a code that only comes after every signature, chain and TCB check passed
 * (hardware checks are reported first). With that one rule waived, the same evidence is accepted or
 * refused by the rest of the policy, and an accepted workload receives its resource.
 */
const TESTDATA = new URL('../../../../../shared/testdata/attestation/', import.meta.url);
const read = (path: string): Buffer => readFileSync(new URL(path, TESTDATA));
const claims = (vector: string): Record<string, unknown> =>
  (JSON.parse(read(`${vector}/expected.json`).toString('utf8')) as { claims: Record<string, unknown> })
    .claims;

function pemToDer(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/g)].map((m) =>
    Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'),
  );
}

/** Sends recorded evidence whatever the report data asked for. */
function recordedAttester(tee: PrimaryTee, evidence: unknown): KbsAttester {
  return { tee, primaryEvidence: () => Promise.resolve(evidence) };
}

function snpEvidence(vector: string, report: Buffer): unknown {
  const [ask, ark] = pemToDer(read(`${vector}/ask_ark.pem`).toString('utf8'));
  return {
    attestation_report: report.toString('base64'),
    cert_chain: [
      { cert_type: 'VCEK', data: read(`${vector}/vcek.der`).toString('base64') },
      { cert_type: 'ASK', data: ask!.toString('base64') },
      { cert_type: 'ARK', data: ark!.toString('base64') },
    ],
  };
}

const VIRTEE = 'snp/virtee-milan-v2';
const virteeReport = Buffer.from(read(`${VIRTEE}/report.hex`).toString('utf8').replace(/\s+/g, ''), 'hex');
const GSG = 'snp/gsg-milan-v2';
const DCAP = 'tdx/dcap-qvl-v4-uptodate';
const SECRET = new TextEncoder().encode('released-to-real-hardware');
const PERMIT_ALL = 'permit(principal, action, resource);';

let fx: TrustFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

async function fixtureAt(
  verifyAt: string,
  policy: Record<string, unknown> = {},
  tdxCollateral?: Buffer,
): Promise<TrustFixture> {
  fx = await startTrustFixture({
    now: () => new Date(verifyAt),
    resources: { 'models/key/llm': SECRET },
    config: { attestation: { policy }, resourcePolicy: PERMIT_ALL },
    ...(tdxCollateral === undefined
      ? {}
      : { endorsements: { tdxCollateral: () => Promise.resolve(new Uint8Array(tdxCollateral)) } }),
  });
  return fx;
}

describe('recorded AMD SEV-SNP evidence', () => {
  it('reaches appraisal and is refused for not binding the session (REPORT_DATA_MISMATCH)', async () => {
    const f = await fixtureAt('2025-06-01T00:00:00Z');
    await expect(
      f
        .client(recordedAttester('snp', snpEvidence(VIRTEE, virteeReport)))
        .getResource('kbs:///models/key/llm'),
    ).rejects.toMatchObject({
      code: 'REPORT_DATA_MISMATCH',
      message: expect.stringMatching(/^REPORT_DATA_MISMATCH: report_data_bound: /) as unknown,
    });
  });

  it('with the binding rule waived, is accepted per policy and receives its resource', async () => {
    const c = claims(VIRTEE);
    const f = await fixtureAt('2025-06-01T00:00:00Z', {
      requireReportDataBinding: false,
      measurements: { snp: { measurement: [c.measurement] } },
      hardwareIds: [c.chip_id],
    });
    const client = f.client(recordedAttester('snp', snpEvidence(VIRTEE, virteeReport)));
    expect(new TextDecoder().decode(await client.getResource('kbs:///models/key/llm'))).toBe(
      'released-to-real-hardware',
    );
    const payload = JSON.parse(Buffer.from(client.token!.split('.')[1]!, 'base64url').toString('utf8')) as {
      submods: { cpu0: Record<string, unknown> };
    };
    expect(payload.submods.cpu0).toMatchObject({
      'ear.status': 'affirming',
      'tresor.tee': 'snp',
      'tresor.insecure': false,
      'tresor.measurements': { measurement: c.measurement },
      'tresor.hardware-ids': [c.chip_id],
    });
  });

  it('is refused when its measurement is not a reference value (MEASUREMENT_NOT_ALLOWED)', async () => {
    const f = await fixtureAt('2025-06-01T00:00:00Z', {
      requireReportDataBinding: false,
      measurements: { snp: { measurement: ['00'.repeat(48)] } },
    });
    await expect(
      f.client(recordedAttester('snp', snpEvidence(VIRTEE, virteeReport))).attest(),
    ).rejects.toMatchObject({
      code: 'MEASUREMENT_NOT_ALLOWED',
    });
  });

  it('is refused when its chip is not in the inventory (RESIDENCY_VIOLATION)', async () => {
    const f = await fixtureAt('2025-06-01T00:00:00Z', {
      requireReportDataBinding: false,
      hardwareIds: ['ab'.repeat(64)],
    });
    await expect(
      f.client(recordedAttester('snp', snpEvidence(VIRTEE, virteeReport))).attest(),
    ).rejects.toMatchObject({
      code: 'RESIDENCY_VIOLATION',
    });
  });

  it('refuses a debug guest (ATTESTATION_DEBUG_ENABLED), whatever else the policy waives', async () => {
    const f = await fixtureAt('2025-06-01T00:00:00Z', { requireReportDataBinding: false });
    await expect(
      f.client(recordedAttester('snp', snpEvidence(GSG, read(`${GSG}/report.bin`)))).attest(),
    ).rejects.toMatchObject({
      code: 'ATTESTATION_DEBUG_ENABLED',
    });
  });

  it('refuses the same evidence once its VCEK has expired (ATTESTATION_CERT_EXPIRED)', async () => {
    const f = await fixtureAt('2030-01-01T00:00:00Z', { requireReportDataBinding: false });
    await expect(
      f.client(recordedAttester('snp', snpEvidence(GSG, read(`${GSG}/report.bin`)))).attest(),
    ).rejects.toMatchObject({
      code: 'ATTESTATION_CERT_EXPIRED',
    });
  });
});

describe('recorded Intel TDX evidence', () => {
  const quote = (vector: string): unknown => ({
    quote: read(`${vector}/quote.bin`).toString('base64'),
    cc_eventlog: null,
  });

  it('reaches appraisal with collateral and is refused for not binding the session (REPORT_DATA_MISMATCH)', async () => {
    const f = await fixtureAt('2025-07-01T00:00:00Z', {}, read(`${DCAP}/collateral.json`));
    await expect(f.client(recordedAttester('tdx', quote(DCAP))).attest()).rejects.toMatchObject({
      code: 'REPORT_DATA_MISMATCH',
    });
  });

  it('with the binding rule waived, an UpToDate TD with an allowed MRTD receives its resource', async () => {
    const body = claims(DCAP).body as { mrtd: string };
    const f = await fixtureAt(
      '2025-07-01T00:00:00Z',
      { requireReportDataBinding: false, measurements: { tdx: { mrtd: [body.mrtd] } } },
      read(`${DCAP}/collateral.json`),
    );
    const client = f.client(recordedAttester('tdx', quote(DCAP)));
    expect(new TextDecoder().decode(await client.getResource('kbs:///models/key/llm'))).toBe(
      'released-to-real-hardware',
    );
  });

  it('refuses it without collateral: the TCB status is unknown (ATTESTATION_COLLATERAL_MISSING)', async () => {
    const f = await fixtureAt('2025-07-01T00:00:00Z', { requireReportDataBinding: false });
    await expect(f.client(recordedAttester('tdx', quote(DCAP))).attest()).rejects.toMatchObject({
      code: 'ATTESTATION_COLLATERAL_MISSING',
    });
  });

  it('refuses a debug TD (ATTESTATION_DEBUG_ENABLED)', async () => {
    const f = await fixtureAt('2025-06-01T00:00:00Z', { requireReportDataBinding: false });
    await expect(
      f.client(recordedAttester('tdx', quote('tdx/trustee-v4-debug'))).attest(),
    ).rejects.toMatchObject({
      code: 'ATTESTATION_DEBUG_ENABLED',
    });
  });
});

describe('composite CPU + GPU evidence', () => {
  it('verifies recorded H100 evidence as additional evidence and refuses its stale nonce (GPU_NONCE_MISMATCH)', async () => {
    const f = await fixtureAt('2025-06-01T00:00:00Z');
    const gpus = JSON.parse(read('nvidia/nvtrust-ppcie-8gpu/gpu_evidence.json').toString('utf8')) as unknown;
    const sample = sampleAttester({ signingKey: f.sampleKey });
    const composite: KbsAttester = {
      ...sample,
      additionalEvidence: () => Promise.resolve({ nvidia: gpus }),
    };
    // The GPUs signed nvtrust's nonce, not one derived from this session's challenge.
    await expect(f.client(composite).attest()).rejects.toMatchObject({ code: 'GPU_NONCE_MISMATCH' });
  });

  it('refuses additional evidence from a device it does not verify (ATTESTATION_TEE_UNSUPPORTED)', async () => {
    const f = await fixtureAt('2025-06-01T00:00:00Z');
    const composite: KbsAttester = {
      ...sampleAttester({ signingKey: f.sampleKey }),
      additionalEvidence: () => Promise.resolve({ hygondcu: {} }),
    };
    await expect(f.client(composite).attest()).rejects.toMatchObject({ code: 'ATTESTATION_TEE_UNSUPPORTED' });
  });
});
