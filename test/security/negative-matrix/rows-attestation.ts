import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  appraise,
  createSampleEvidence,
  GPU_EVIDENCE_MEMBER,
  parseAppraisalPolicy,
  parseCertificates,
  SampleSigningKey,
  sampleVerifier,
  verifyAttestation,
  type AppraisalContext,
  type AppraisalPolicyInput,
  type AttestationFiles,
  type VerificationResult,
} from '@tresor/attestation';
import { bytesToHex, runtimeDataHash, utf8Encode } from '@tresor/crypto';
import { parseTrustConfig } from '@tresor/trust';
import { testdataVector } from '../../../packages/attestation/src/conformance/testdata-vectors.js';
import { readTestdata, readTestdataJson, readTestdataText } from '../../support/testdata.js';
import { refusal, verdict, type Attack, type Control } from './attack.js';

/**
 * Attestation: recorded evidence from real hardware (testdata/attestation) tampered with, verified
 * against the wrong roots or at the wrong time, and appraised against policies it breaks; the
 * sample TEE where production is required. Hardware verification rows go through
 * `verifyAttestation` (what `tresor attest verify` and the trust service run); policy rows through
 * `appraise` with every rule but the one under test relaxed.
 */

function vector(id: string): { files: AttestationFiles; at: Date } {
  const dir = `attestation/${id}`;
  const v = testdataVector(readTestdataJson(`${dir}/expected.json`), (file) =>
    readTestdata(`${dir}/${file}`),
  );
  return { files: v.files, at: (v.cases.find((c) => c.valid) ?? v.cases[0]!).verifyAt };
}

function flipBit(bytes: Uint8Array, byte: number, bit = 0): Uint8Array {
  const out = bytes.slice();
  out[byte] = out[byte]! ^ (1 << bit);
  return out;
}

const GSG = vector('snp/gsg-milan-v2');
const GENOA = vector('snp/azure-genoa-v3');
const VIRTEE = vector('snp/virtee-milan-v2');
const VLEK = vector('snp/trustee-milan-vlek-v3');
const MILAN_V3 = vector('snp/azure-milan-v3-a');
const TDX = vector('tdx/dcap-qvl-v4-uptodate');
const TDX_DEBUG = vector('tdx/trustee-v4-debug');
const HOPPER = vector('nvidia/nvtrust-hopper-sample');
const PPCIE = vector('nvidia/nvtrust-ppcie-8gpu');

const verify = async (
  files: AttestationFiles,
  now: Date,
  extra: { gpuNonce?: string } = {},
): Promise<VerificationResult> => (await verifyAttestation({ files, now, ...extra })).result;

/** Every rule that a row does not exercise, relaxed: only hardware verification remains. */
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

async function appraised(
  results: readonly VerificationResult[],
  policy: AppraisalPolicyInput,
  context: Partial<AppraisalContext> = {},
): Promise<ReturnType<typeof verdict>> {
  return verdict(
    await appraise(results, parseAppraisalPolicy({ ...RELAXED, ...policy }), { now: NOW, ...context }),
  );
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

/** The dcap-qvl collateral with its PCK CRL replaced by one listing the quote's own PCK certificate. */
async function collateralRevokingPck(): Promise<Uint8Array> {
  const quote = TDX.files.quote!;
  const text = Buffer.from(quote).toString('latin1');
  const pem = text.slice(text.indexOf('-----BEGIN CERTIFICATE-----'));
  const [pck] = parseCertificates(new Uint8Array(Buffer.from(pem, 'latin1')));
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]);
  const crl = await x509.X509CrlGenerator.create({
    issuer: 'CN=Intel SGX PCK Platform CA',
    thisUpdate: new Date('2025-06-01T00:00:00Z'),
    nextUpdate: new Date('2025-08-01T00:00:00Z'),
    entries: [{ serialNumber: pck!.serialNumber, revocationDate: new Date('2025-06-02T00:00:00Z') }],
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    signingKey: keys.privateKey,
  });
  const json = JSON.parse(readTestdataText('attestation/tdx/dcap-qvl-v4-uptodate/collateral.json')) as Record<
    string,
    unknown
  >;
  json.pck_crl = bytesToHex(new Uint8Array(crl.rawData));
  return utf8Encode(JSON.stringify(json));
}

const component = 'attestation' as const;

export const attestationControls: readonly Control[] = [
  {
    component,
    what: 'SEV-SNP (Milan, VCEK) recorded report verifies',
    run: async () => verdict(await verify(GSG.files, GSG.at)),
  },
  {
    component,
    what: 'TDX quote with dcap-qvl collateral verifies',
    run: async () => verdict(await verify(TDX.files, TDX.at)),
  },
  {
    component,
    what: 'NVIDIA H100 SPDM report verifies',
    run: async () => verdict(await verify(HOPPER.files, HOPPER.at)),
  },
  {
    component,
    what: 'relaxed policy affirms hardware-valid Genoa evidence',
    run: async () => appraised([await verify(GENOA.files, GENOA.at)], {}),
  },
];

export const attestationAttacks: readonly Attack[] = [
  {
    component,
    attack: 'SEV-SNP: one bit of report_data flipped in a recorded report',
    expect: 'ATTESTATION_SIGNATURE_INVALID',
    run: async () =>
      verdict(await verify({ ...GSG.files, report: flipBit(GSG.files.report!, 0x50) }, GSG.at)),
  },
  {
    component,
    attack: 'SEV-SNP: measurement edited in a recorded report',
    expect: 'ATTESTATION_SIGNATURE_INVALID',
    run: async () =>
      verdict(await verify({ ...GENOA.files, report: flipBit(GENOA.files.report!, 0x90, 3) }, GENOA.at)),
  },
  {
    component,
    attack: 'SEV-SNP: Milan report presented with the Genoa chain (wrong root)',
    expect: 'ATTESTATION_ROOT_UNTRUSTED',
    run: async () => verdict(await verify({ ...GSG.files, ca_chain: GENOA.files.ca_chain! }, GSG.at)),
  },
  {
    component,
    attack: 'SEV-SNP: VCEK issued for another TCB beside the report',
    expect: 'ATTESTATION_TCB_MISMATCH',
    run: async () => verdict(await verify({ ...GSG.files, signer_cert: VIRTEE.files.signer_cert! }, GSG.at)),
  },
  {
    component,
    attack: 'SEV-SNP: VCEK of another chip (same TCB) beside the report',
    expect: 'ATTESTATION_CHIP_ID_MISMATCH',
    run: async () =>
      verdict(
        await verify(
          { ...VIRTEE.files, signer_cert: vector('snp/azure-milan-hcl-v2').files.signer_cert! },
          VIRTEE.at,
        ),
      ),
  },
  {
    component,
    attack: 'SEV-SNP: VCEK used after its notAfter (2030)',
    expect: 'ATTESTATION_CERT_EXPIRED',
    run: async () => verdict(await verify(GSG.files, new Date('2030-01-01T00:00:00Z'))),
  },
  {
    component,
    attack: 'SEV-SNP: VCEK used before its notBefore',
    expect: 'ATTESTATION_CERT_NOT_YET_VALID',
    run: async () => verdict(await verify(GENOA.files, new Date('2024-12-01T00:00:00Z'))),
  },
  {
    component,
    attack: 'SEV-SNP: short-lived VLEK used after it expired',
    expect: 'ATTESTATION_CERT_EXPIRED',
    run: async () => verdict(await verify(VLEK.files, new Date('2026-01-01T00:00:00Z'))),
  },
  {
    component,
    attack: 'TDX: one bit of the TD report flipped',
    expect: 'ATTESTATION_SIGNATURE_INVALID',
    run: async () =>
      verdict(await verify({ ...TDX.files, quote: flipBit(TDX.files.quote!, 48 + 136) }, TDX.at)),
  },
  {
    component,
    attack: 'TDX: PCK certificate listed in a (forged) PCK CRL: revocation check refuses',
    expect: 'ATTESTATION_CERT_REVOKED',
    run: async () => {
      const result = await verify({ ...TDX.files, collateral: await collateralRevokingPck() }, TDX.at);
      // The forged CRL also fails its own signature check; this row is about the revocation check.
      return result.checks.pck_not_revoked?.code ?? null;
    },
  },
  {
    component,
    attack: 'TDX: collateral used after its nextUpdate',
    expect: 'ATTESTATION_COLLATERAL_EXPIRED',
    run: async () => verdict(await verify(TDX.files, new Date('2025-08-01T00:00:00Z'))),
  },
  {
    component,
    attack: 'NVIDIA: nonce other than the one the GPU signed (stale evidence)',
    expect: 'GPU_NONCE_MISMATCH',
    run: async () => verdict(await verify(HOPPER.files, HOPPER.at, { gpuNonce: 'ab'.repeat(32) })),
  },
  {
    component,
    attack: 'NVIDIA: device chain presented under the Intel root (wrong root)',
    expect: 'ATTESTATION_ROOT_UNTRUSTED',
    run: async () =>
      verdict(
        await verify(
          {
            ...HOPPER.files,
            nvidia_device_root: readTestdata('attestation/tdx/go-tdx-guest-v4-spr/intel_sgx_root_ca.pem'),
          },
          HOPPER.at,
        ),
      ),
  },
  {
    component,
    attack: 'evidence of no supported TEE',
    expect: 'ATTESTATION_TEE_UNSUPPORTED',
    run: () =>
      refusal(() => verifyAttestation({ files: { evidence: utf8Encode('{"tee":"sgx"}') }, now: NOW })),
  },
  {
    component,
    attack: 'SEV-SNP guest launched with DEBUG (host can read its memory)',
    expect: 'ATTESTATION_DEBUG_ENABLED',
    run: async () => appraised([await verify(GSG.files, GSG.at)], {}),
  },
  {
    component,
    attack: 'TDX TD launched with the DEBUG attribute',
    expect: 'ATTESTATION_DEBUG_ENABLED',
    run: async () => appraised([await verify(TDX_DEBUG.files, NOW)], {}),
  },
  {
    component,
    attack: 'SEV-SNP reported TCB below the policy minimum (microcode 115 < 116)',
    expect: 'TCB_OUT_OF_DATE',
    run: async () =>
      appraised([await verify(VIRTEE.files, VIRTEE.at)], {
        tcb: {
          requireStatus: false,
          minimum: [{ tee: 'snp', product: 'Milan', components: { bootloader: 3, snp: 8, microcode: 116 } }],
        },
      }),
  },
  {
    component,
    attack: 'TDX without collateral where the policy requires a TCB status',
    expect: 'ATTESTATION_COLLATERAL_MISSING',
    run: async () =>
      appraised([await verify(vector('tdx/azure-v4').files, NOW)], { tcb: { requireStatus: true } }),
  },
  {
    component,
    attack: 'report_data does not bind the runtime data (key/nonce of another session)',
    expect: 'REPORT_DATA_MISMATCH',
    run: async () =>
      appraised(
        [await verify(MILAN_V3.files, MILAN_V3.at)],
        { requireReportDataBinding: true },
        { runtimeData: { nonce: 'abc' } },
      ),
  },
  {
    component,
    attack: 'evidence produced 301 s before appraisal (stale nonce, limit 300 s)',
    expect: 'EVIDENCE_STALE',
    run: async () =>
      appraised(
        [await verify(GENOA.files, GENOA.at)],
        { maxEvidenceAgeSeconds: 300 },
        {
          evidenceTime: new Date(NOW.getTime() - 301_000),
        },
      ),
  },
  {
    component,
    attack: 'measurement not in the reference values',
    expect: 'MEASUREMENT_NOT_ALLOWED',
    run: async () =>
      appraised([await verify(GENOA.files, GENOA.at)], {
        measurements: { snp: { measurement: ['00'.repeat(48)] } },
      }),
  },
  {
    component,
    attack: 'chip outside the residency inventory',
    expect: 'RESIDENCY_VIOLATION',
    run: async () => appraised([await verify(VIRTEE.files, VIRTEE.at)], { hardwareIds: ['00112233'] }),
  },
  {
    component,
    attack: 'SEV-SNP guest at VMPL 1 where only VMPL 0 is allowed',
    expect: 'ATTESTATION_VMPL_NOT_ALLOWED',
    run: async () => appraised([await verify(VLEK.files, VLEK.at)], { vmpls: [0] }),
  },
  {
    component,
    attack: 'GPU evidence with no CPU report binding it (unbound GPU)',
    expect: 'GPU_EVIDENCE_NOT_BOUND',
    run: async () => appraised([await verify(PPCIE.files, PPCIE.at)], { requireGpuBinding: true }),
  },
  {
    component,
    attack: 'GPU evidence bound by a CPU report listing only 7 of 8 GPUs',
    expect: 'GPU_EVIDENCE_NOT_BOUND',
    run: async () => {
      const gpus = await verify(PPCIE.files, PPCIE.at);
      const hashes = (gpus.claims as { gpus: { evidence_sha256: string }[] }).gpus.map(
        (g) => g.evidence_sha256,
      );
      const seven = { nonce: 'n', [GPU_EVIDENCE_MEMBER]: hashes.slice(1) };
      return appraised(
        [await sampleResult(seven), gpus],
        { allowSampleTee: true, requireGpuBinding: true },
        {
          runtimeData: seven,
        },
      );
    },
  },
  {
    component,
    attack: 'sample TEE evidence under the production (default) policy',
    expect: 'SAMPLE_TEE_NOT_ALLOWED',
    run: async () => {
      const runtimeData = { nonce: 'n' };
      return verdict(
        await appraise([await sampleResult(runtimeData)], parseAppraisalPolicy({}), {
          now: NOW,
          runtimeData,
        }),
      );
    },
  },
  {
    component,
    attack: 'trust service configured for production with the sample TEE allowed',
    expect: 'CONFIG_INVALID',
    run: () =>
      refusal(() =>
        parseTrustConfig({
          mode: 'production',
          server: {
            tls: { cert: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', key: 'k' },
          },
          attestation: { policy: { allowSampleTee: true } },
        }),
      ),
  },
];
