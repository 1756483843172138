import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesToHex, hexToBytes } from '@tresor/crypto';
import { readTestdata } from '../../../../test/support/testdata.js';
import { parseCertificates } from '../certs.js';
import { checkCertHwId, checkCertTcb } from './binding.js';
import type { SnpClaims } from './claims.js';
import { productFromCommonName, productFromCpuid } from './product.js';
import { parseSnpReportBytes } from './report.js';
import { decodeTcb, tcbRawHex } from './tcb.js';
import { AMD_OID, readAmdKeyExtensions } from './vcek-extensions.js';
import { snpVerifier } from './verifier.js';

/**
 * Turin (Zen 5) has no published report in the test data, so its TCB layout and 8-byte hardware ID
 * are tested with SYNTHETIC inputs built here: a Genoa report with Turin's CPUID and TCB bytes
 * written in (unsigned), and a VCEK-like certificate carrying Turin's extensions under a generated
 * key. They exercise decoding and comparison logic only; neither is, or stands for, hardware evidence.
 */

const NOW = new Date('2025-06-01T00:00:00Z');
/** Turin TCB_VERSION bytes: [0] FMC, [1] boot loader, [2] TEE, [3] SNP, [4..6] reserved, [7] microcode. */
const TURIN_TCB = { fmc: 2, bootloader: 4, tee: 1, snp: 27, microcode: 0xa9 };
const TURIN_TCB_BYTES = new Uint8Array([2, 4, 1, 27, 0, 0, 0, 0xa9]);
const CHIP_ID_8 = hexToBytes('c0ffee00d15ea5e1');

function syntheticTurinReport(): Uint8Array {
  const bytes = readTestdata('attestation/snp/azure-genoa-v3/report.bin').slice();
  bytes.set([0x1a, 0x02, 0x00], 0x188); // CPUID family 1Ah, model 02h, stepping 0
  for (const offset of [0x038, 0x180, 0x1e0, 0x1f0]) bytes.set(TURIN_TCB_BYTES, offset);
  bytes.fill(0, 0x1a0, 0x1e0);
  bytes.set(CHIP_ID_8, 0x1a0);
  return bytes;
}

const derInteger = (n: number): Uint8Array =>
  new Uint8Array(n < 0x80 ? [0x02, 0x01, n] : [0x02, 0x02, 0x00, n]);
const derIa5 = (text: string): Uint8Array =>
  new Uint8Array([0x16, text.length, ...new TextEncoder().encode(text)]);

interface VcekLike {
  tcb?: Partial<typeof TURIN_TCB>;
  omit?: string[];
  hwId?: Uint8Array;
}

async function syntheticTurinVcek(options: VcekLike = {}): Promise<Uint8Array> {
  const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
  const keys = await crypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const tcb = { ...TURIN_TCB, ...options.tcb };
  const values: [string, Uint8Array][] = [
    [AMD_OID.structVersion, derInteger(1)],
    [AMD_OID.productName, derIa5('Turin-B0')],
    [AMD_OID.bootloaderSpl, derInteger(tcb.bootloader)],
    [AMD_OID.teeSpl, derInteger(tcb.tee)],
    [AMD_OID.snpSpl, derInteger(tcb.snp)],
    [AMD_OID.microcodeSpl, derInteger(tcb.microcode)],
    [AMD_OID.fmcSpl, derInteger(tcb.fmc)],
    [AMD_OID.hwId, options.hwId ?? CHIP_ID_8],
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject: 'CN=SEV-VCEK, O=Tresor synthetic Turin test certificate',
    issuer: 'OU=Engineering, C=US, L=Santa Clara, ST=CA, O=Advanced Micro Devices, CN=SEV-Turin',
    notBefore: new Date('2025-01-01T00:00:00Z'),
    notAfter: new Date('2026-01-01T00:00:00Z'),
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    extensions: values
      .filter(([oid]) => !(options.omit ?? []).includes(oid))
      .map(([oid, value]) => new x509.Extension(oid, false, value.slice().buffer)),
  });
  return new Uint8Array(cert.rawData);
}

describe('Turin TCB layout and products', () => {
  it('decodes TCB_VERSION per product', () => {
    expect(decodeTcb(TURIN_TCB_BYTES, 'Turin')).toEqual(TURIN_TCB);
    expect(decodeTcb(TURIN_TCB_BYTES, 'Milan')).toEqual({ bootloader: 2, tee: 4, snp: 0, microcode: 0xa9 });
    expect(tcbRawHex(TURIN_TCB_BYTES)).toBe('a90000001b010402');
  });

  it('names products from CPUID and from AMD common names', () => {
    const cases: [number, number, string | null][] = [
      [0x19, 0x01, 'Milan'],
      [0x19, 0x0f, 'Milan'],
      [0x19, 0x11, 'Genoa'],
      [0x19, 0xa0, 'Genoa'],
      [0x19, 0x21, null],
      [0x1a, 0x02, 'Turin'],
      [0x1a, 0x11, 'Turin'],
      [0x1a, 0x12, null],
      [0x17, 0x31, null],
    ];
    for (const [family, model, product] of cases) expect(productFromCpuid(family, model)).toBe(product);
    expect(
      ['ARK-Turin', 'SEV-Turin', 'SEV-VLEK-Turin', 'SEV-VCEK', 'ARK-Venice'].map(productFromCommonName),
    ).toEqual(['Turin', 'Turin', 'Turin', null, null]);
  });
});

describe('Turin VCEK binding (synthetic report and certificate)', () => {
  const report = parseSnpReportBytes(syntheticTurinReport());
  let vcek: Uint8Array;

  beforeAll(async () => {
    vcek = await syntheticTurinVcek();
  });

  const extensionsOf = (der: Uint8Array) => readAmdKeyExtensions(parseCertificates(der)[0]!);

  it('reads the Turin extensions, FMC included, and the 8-byte hardware ID', () => {
    const ext = extensionsOf(vcek);
    expect(ext.tcb).toEqual(TURIN_TCB);
    expect(ext.productName).toBe('Turin-B0');
    expect(ext.hwId).toEqual(CHIP_ID_8);
  });

  it('matches the certificate TCB, FMC included, against the reported TCB', async () => {
    expect(checkCertTcb(report, 'Turin', extensionsOf(vcek))).toMatchObject({ ok: true });
    const otherFmc = checkCertTcb(
      report,
      'Turin',
      extensionsOf(await syntheticTurinVcek({ tcb: { fmc: 3 } })),
    );
    expect(otherFmc).toMatchObject({ ok: false, code: 'ATTESTATION_TCB_MISMATCH' });
    expect(otherFmc.detail).toBe('fmc 3 in the certificate, 2 reported');
    const noFmc = checkCertTcb(
      report,
      'Turin',
      extensionsOf(await syntheticTurinVcek({ omit: [AMD_OID.fmcSpl] })),
    );
    expect(noFmc.detail).toBe('fmc missing in the certificate, 2 reported');
    // Read with Milan's layout the same bytes would be another TCB: the product must pick the layout.
    expect(checkCertTcb(report, 'Milan', extensionsOf(vcek))).toMatchObject({ ok: false });
  });

  it('matches the 8-byte hardware ID against the first 8 bytes of CHIP_ID', async () => {
    expect(checkCertHwId(report, 'Turin', extensionsOf(vcek))).toMatchObject({ ok: true });
    const other = extensionsOf(await syntheticTurinVcek({ hwId: hexToBytes('c0ffee00d15ea5e2') }));
    expect(checkCertHwId(report, 'Turin', other)).toMatchObject({
      ok: false,
      code: 'ATTESTATION_CHIP_ID_MISMATCH',
    });
    // A 64-byte comparison (Milan/Genoa) of an 8-byte hwID never matches.
    expect(checkCertHwId(report, 'Genoa', extensionsOf(vcek))).toMatchObject({ ok: false });
  });

  it('verifies the Turin path end to end up to the signatures only AMD can make', async () => {
    const result = await snpVerifier.verify(report, { signerCert: vcek }, { now: NOW });
    const ok = Object.fromEntries(Object.entries(result.checks).map(([name, c]) => [name, c.ok]));
    expect(ok).toEqual({
      ark_pinned: true, // CPUID 1Ah/02h → ARK-Turin, pinned in code
      ark_self_signed: true,
      ask_signed_by_ark: true, // the pinned SEV-Turin ASK verifies under the pinned ARK-Turin
      leaf_signed_by_ask: false, // the synthetic certificate is not AMD's
      certs_valid_at_time: true,
      signer_matches_cert: true,
      product_matches_chain: true,
      cert_tcb_equals_reported_tcb: true,
      cert_hwid_equals_chip_id: true,
      report_signature: false, // the synthetic report is unsigned
    });
    expect(result.error).toBe('ATTESTATION_CERT_CHAIN_INVALID');
    const claims = result.claims as SnpClaims;
    expect(claims.product).toBe('Turin');
    expect(claims.reported_tcb).toEqual({ ...TURIN_TCB, raw: 'a90000001b010402' });
    expect(claims.cpuid).toEqual({ family: '0x1a', model: '0x02', stepping: '0x00' });
    expect(result.appraisal.tcb).toEqual({ product: 'Turin', ...TURIN_TCB });
    expect(result.appraisal.hardwareIds).toEqual([bytesToHex(report.chipId)]);
  });
});
