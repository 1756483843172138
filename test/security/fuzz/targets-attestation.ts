import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import {
  createSampleEvidence,
  parseCertificates,
  parseCrl,
  parseNvidiaReferenceManifest,
  parseSampleEvidence,
  parseSnpReportBytes,
  parseTdxQuote,
  readAzSnpVtpmEvidence,
  resolveTee,
  SampleSigningKey,
  snpReportBytes,
  snpReportFromHclReport,
  verifyAttestation,
  type AttestationFiles,
} from '@tresor/attestation';
import { testdataVector } from '../../../packages/attestation/src/conformance/testdata-vectors.js';
import { parseGpuAttestationReport } from '../../../packages/attestation/src/nvidia/attestation-report.js';
import { parseNvidiaEvidence } from '../../../packages/attestation/src/nvidia/evidence.js';
import { parseGpuOpaqueData } from '../../../packages/attestation/src/nvidia/opaque-data.js';
import { readAmdKeyExtensions } from '../../../packages/attestation/src/snp/vcek-extensions.js';
import { parseTdxCollateral } from '../../../packages/attestation/src/tdx/collateral.js';
import { readPckSgxExtension } from '../../../packages/attestation/src/tdx/pck-extension.js';
import { parseQeReport } from '../../../packages/attestation/src/tdx/qe-report.js';
import { readTestdata, readTestdataJson } from '../../support/testdata.js';
import { target, type FuzzTarget } from './harness.js';
import { mutatedBytes } from './mutate.js';

/**
 * Every decoder of attestation evidence and of the certificates that come with it, fed mutations of
 * the real vectors under /work/shared/testdata/attestation (SEV-SNP reports, Azure HCL and vTPM
 * wrappers, TDX quotes and dcap-qvl collateral, NVIDIA SPDM reports and JSON lists, sample
 * evidence), and the whole `verifyAttestation` path with real endorsements beside mutated evidence.
 */

const read = (path: string): Uint8Array => readTestdata(`attestation/${path}`);

function vector(id: string): { files: AttestationFiles; at: Date } {
  const v = testdataVector(readTestdataJson(`attestation/${id}/expected.json`), (file) =>
    read(`${id}/${file}`),
  );
  return { files: v.files, at: v.cases.find((c) => c.valid)!.verifyAt };
}

/** The 1184-byte report at offset 0x20 of an HCL report (the vector's own derivation). */
const SNP_REPORTS = [
  read('snp/gsg-milan-v2/report.bin'),
  read('snp/trustee-milan-vlek-v3/report.bin'),
  read('snp/azure-genoa-v3/report.bin'),
];
const HCL = read('snp/azure-milan-hcl-v2/hcl-report.bin');
const AZ_VTPM = [read('snp/azure-genoa-v3/evidence.json'), read('snp/azure-milan-v3-a/evidence.json')];
const TDX_QUOTES = [
  read('tdx/azure-v4/quote.bin'),
  read('tdx/dcap-qvl-v4-uptodate/quote.bin'),
  read('tdx/go-tdx-guest-v5/quote.bin'),
];
const TDX_COLLATERAL = [
  read('tdx/dcap-qvl-v4-uptodate/collateral.json'),
  read('tdx/dcap-qvl-v5-outdated/collateral.json'),
];
const NVIDIA_HEX = read('nvidia/nvtrust-hopper-sample/attestation_report.hex');
const NVIDIA_REPORT = Uint8Array.from(Buffer.from(new TextDecoder().decode(NVIDIA_HEX).trim(), 'hex'));
const NVIDIA_LIST = read('nvidia/nvtrust-ppcie-8gpu/gpu_evidence.json');

const sampleKey = SampleSigningKey.generate(() => new Uint8Array(32).fill(7));
const SAMPLE = createSampleEvidence({
  reportData: new Uint8Array(64).fill(3),
  svn: 1,
  signingKey: sampleKey,
  measurement: new Uint8Array(48).fill(9),
});

const CERT_PEM = [
  read('snp/gsg-milan-v2/ask_ark.pem'),
  read('snp/azure-genoa-v3/vcek.pem'),
  read('nvidia/nvtrust-hopper-sample/cert_chain.pem'),
  read('tdx/go-tdx-guest-v4-spr/intel_sgx_root_ca.pem'),
];
const CERT_DER = [
  read('snp/gsg-milan-v2/vcek.der'),
  read('snp/trustee-milan-vlek-v3/vlek.der'),
  read('tdx/azure-v4/intel_sgx_root_ca.der'),
];

/** The PCK leaf certificate embedded in a TDX quote (PEM inside the QE certification data). */
function pckPem(quote: Uint8Array): Uint8Array {
  const text = Buffer.from(quote).toString('latin1');
  const start = text.indexOf('-----BEGIN CERTIFICATE-----');
  const end = text.indexOf('-----END CERTIFICATE-----', start) + '-----END CERTIFICATE-----'.length;
  return new Uint8Array(Buffer.from(text.slice(start, end), 'latin1'));
}
const PCK = pckPem(TDX_QUOTES[1]!);

/** A real CRL (the vectors carry none): ECDSA-signed, with revoked entries, generated at load. */
async function generatedCrl(): Promise<Uint8Array> {
  const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
  const keys = await crypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const crl = await x509.X509CrlGenerator.create({
    issuer: 'CN=SEV-Milan, OU=Engineering, O=Advanced Micro Devices',
    thisUpdate: new Date('2025-01-01T00:00:00Z'),
    nextUpdate: new Date('2025-02-01T00:00:00Z'),
    signingAlgorithm: alg,
    signingKey: keys.privateKey,
    entries: ['01', '7f3a', '0a0b0c0d'].map((serialNumber) => ({
      serialNumber,
      revocationDate: new Date('2024-12-01T00:00:00Z'),
    })),
  });
  return new Uint8Array(crl.rawData);
}
const CRL_DER = await generatedCrl();
const CRL_PEM = new TextEncoder().encode(x509.PemConverter.encode(CRL_DER.slice().buffer, 'X509 CRL'));

const SNP_VERIFY = vector('snp/gsg-milan-v2');
const TDX_VERIFY = vector('tdx/dcap-qvl-v4-uptodate');
const NVIDIA_VERIFY = vector('nvidia/nvtrust-hopper-sample');

export function attestationTargets(): FuzzTarget<unknown>[] {
  const family = 'attestation evidence' as const;
  return [
    target({
      family,
      name: 'parseSnpReportBytes',
      input: mutatedBytes(SNP_REPORTS),
      run: (b) => parseSnpReportBytes(b),
      ciRuns: 16_000,
    }),
    target({
      family,
      name: 'snpReportBytes (raw/hex/HCL/vTPM JSON)',
      input: mutatedBytes([...SNP_REPORTS, HCL, ...AZ_VTPM]),
      run: (b) => snpReportBytes(b),
      ciRuns: 6_000,
    }),
    target({
      family,
      name: 'snpReportFromHclReport',
      input: mutatedBytes([HCL]),
      run: (b) => snpReportFromHclReport(b),
      ciRuns: 8_000,
    }),
    target({
      family,
      name: 'readAzSnpVtpmEvidence',
      input: mutatedBytes(AZ_VTPM),
      run: (b) => readAzSnpVtpmEvidence(b),
      ciRuns: 3_000,
    }),
    target({
      family,
      name: 'parseTdxQuote',
      input: mutatedBytes(TDX_QUOTES),
      run: (b) => parseTdxQuote(b),
      ciRuns: 14_000,
    }),
    target({
      family,
      name: 'parseQeReport',
      input: mutatedBytes(TDX_QUOTES.map((q) => parseTdxQuote(q).qeReport.raw)),
      run: (b) => parseQeReport(b),
      ciRuns: 8_000,
    }),
    target({
      family,
      name: 'parseTdxCollateral',
      input: mutatedBytes(TDX_COLLATERAL),
      run: (b) => parseTdxCollateral(b),
      ciRuns: 2_500,
    }),
    target({
      family,
      name: 'parseNvidiaEvidence (hex and JSON list)',
      input: mutatedBytes([NVIDIA_HEX, NVIDIA_LIST]),
      run: (b) => parseNvidiaEvidence(b),
      ciRuns: 2_000,
    }),
    target({
      family,
      name: 'parseGpuAttestationReport',
      input: mutatedBytes([NVIDIA_REPORT]),
      run: (b) => parseGpuAttestationReport(b),
      ciRuns: 12_000,
    }),
    target({
      family,
      name: 'parseGpuOpaqueData',
      input: mutatedBytes([gpuOpaqueData(NVIDIA_REPORT)]),
      run: (b) => parseGpuOpaqueData(b),
      ciRuns: 10_000,
    }),
    target({
      family,
      name: 'parseNvidiaReferenceManifest',
      input: mutatedBytes([
        new TextEncoder().encode(
          JSON.stringify({ description: 'H100', measurements: { '2': ['ab'.repeat(48)], '0': ['00'] } }),
        ),
      ]),
      run: (b) => parseNvidiaReferenceManifest(b),
      ciRuns: 6_000,
    }),
    target({
      family,
      name: 'parseSampleEvidence',
      input: mutatedBytes([SAMPLE]),
      run: (b) => parseSampleEvidence(b),
      ciRuns: 8_000,
    }),
    target({
      family,
      name: 'resolveTee (recognise any evidence)',
      input: mutatedBytes([SNP_REPORTS[0]!, TDX_QUOTES[0]!, NVIDIA_HEX, SAMPLE, AZ_VTPM[0]!]),
      run: (b) => resolveTee(b),
      ciRuns: 6_000,
    }),
    target({
      family,
      name: 'verifyAttestation (SNP, real chain)',
      input: mutatedBytes([SNP_VERIFY.files.report!]),
      async: true,
      run: (report) => verifyAttestation({ files: { ...SNP_VERIFY.files, report }, now: SNP_VERIFY.at }),
      ciRuns: 1_200,
    }),
    target({
      family,
      name: 'verifyAttestation (TDX, real collateral)',
      input: fc.oneof(
        mutatedBytes([TDX_VERIFY.files.quote!]).map((quote) => ({ ...TDX_VERIFY.files, quote })),
        mutatedBytes([TDX_VERIFY.files.collateral!]).map((collateral) => ({
          ...TDX_VERIFY.files,
          collateral,
        })),
      ),
      async: true,
      run: (files) => verifyAttestation({ files, now: TDX_VERIFY.at }),
      ciRuns: 800,
    }),
    target({
      family,
      name: 'verifyAttestation (NVIDIA, real chain)',
      input: mutatedBytes([NVIDIA_VERIFY.files.evidence!]),
      async: true,
      run: (evidence) =>
        verifyAttestation({ files: { ...NVIDIA_VERIFY.files, evidence }, now: NVIDIA_VERIFY.at }),
      ciRuns: 500,
    }),
  ];
}

export function certificateTargets(): FuzzTarget<unknown>[] {
  const family = 'certificates' as const;
  return [
    target({
      family,
      name: 'parseCertificates (PEM)',
      input: mutatedBytes(CERT_PEM),
      run: (b) => parseCertificates(b),
      ciRuns: 12_000,
    }),
    target({
      family,
      name: 'parseCertificates (DER)',
      input: mutatedBytes(CERT_DER),
      run: (b) => parseCertificates(b),
      ciRuns: 40_000,
    }),
    target({
      family,
      name: 'parseCrl',
      input: mutatedBytes([CRL_DER, CRL_PEM]),
      run: (b) => parseCrl(b),
      ciRuns: 20_000,
    }),
    target({
      family,
      name: 'readAmdKeyExtensions (VCEK/VLEK)',
      input: mutatedBytes([CERT_DER[0]!, CERT_DER[1]!]),
      run: (b) => {
        for (const cert of parseCertificates(b)) readAmdKeyExtensions(cert);
      },
      ciRuns: 16_000,
    }),
    target({
      family,
      name: 'readPckSgxExtension (TDX PCK)',
      input: mutatedBytes([PCK]),
      run: (b) => {
        for (const cert of parseCertificates(b)) readPckSgxExtension(cert);
      },
      ciRuns: 12_000,
    }),
  ];
}

/** The opaque data of the SPDM measurements response: the bytes just before the signature. */
function gpuOpaqueData(report: Uint8Array): Uint8Array {
  const parsed = parseGpuAttestationReport(report);
  const signed = parsed.signedBytes;
  const opaque = signed.slice(signed.length - parsed.response.opaqueDataLength);
  parseGpuOpaqueData(opaque); // the seed itself must parse, or the mutations start from noise
  return opaque;
}
