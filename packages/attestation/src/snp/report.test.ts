import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { bytesToBase64Url, bytesToHex, concatBytes, utf8Encode } from '@tresor/crypto';
import { readTestdata, readTestdataText } from '../../../../test/support/testdata.js';
import { readAzSnpVtpmEvidence, snpReportBytes, snpReportFromHclReport } from './evidence-formats.js';
import { parseSnpReportBytes, SNP_REPORT_SIZE } from './report.js';
import { snpVerifier } from './verifier.js';

const GSG = 'attestation/snp/gsg-milan-v2';
const GENOA = 'attestation/snp/azure-genoa-v3';
const HCL = 'attestation/snp/azure-milan-hcl-v2';
const VIRTEE = 'attestation/snp/virtee-milan-v2';

const gsgReport = readTestdata(`${GSG}/report.bin`);
const hclReport = readTestdata(`${HCL}/hcl-report.bin`);
const genoaEvidence = readTestdata(`${GENOA}/evidence.json`);

function expectMalformed(run: () => unknown): void {
  expect(run).toThrow(expect.objectContaining({ code: 'ATTESTATION_EVIDENCE_MALFORMED' }));
}

/** The parser's contract under any input: a report, or a TresorError with an input code. */
function parsesOrRefusesCleanly(input: Uint8Array): boolean {
  try {
    const report = snpVerifier.parse(input);
    return report.bytes.length === SNP_REPORT_SIZE;
  } catch (error) {
    return isTresorError(error) && ['ATTESTATION_EVIDENCE_MALFORMED', 'INPUT_MALFORMED'].includes(error.code);
  }
}

describe('SEV-SNP report parsing', () => {
  it('reads the fields of a version-2 report at their ABI offsets', () => {
    const r = parseSnpReportBytes(gsgReport);
    expect(r.version).toBe(2);
    expect(r.policy).toBe(0xb0000n);
    expect(r.vmpl).toBe(0);
    expect(r.signatureAlgo).toBe(1);
    expect(r.signingKey).toBe('vcek');
    expect(r.cpuid).toBeNull();
    expect(r.launchMitVector).toBeNull();
    expect(bytesToHex(r.reportData.subarray(0, 5))).toBe('0102030405');
    expect(r.currentFw).toEqual({ major: 1, minor: 49, build: 3 });
  });

  it('reads CPUID from version 3 and the mitigation vectors from version 5', () => {
    const genoa = parseSnpReportBytes(readTestdata(`${GENOA}/report.bin`));
    expect(genoa.cpuid).toEqual({ family: 0x19, model: 0x11, stepping: 0x01 });
    expect(genoa.launchMitVector).toBeNull();
    // Version 5 is the version-3 layout plus two u64s at 0x1F8/0x200 (no v5 report is published).
    const v5 = genoa.bytes.slice();
    v5[0] = 5;
    new DataView(v5.buffer).setBigUint64(0x1f8, 0x11n, true);
    new DataView(v5.buffer).setBigUint64(0x200, 0x13n, true);
    const parsed = parseSnpReportBytes(v5);
    expect([parsed.version, parsed.launchMitVector, parsed.currentMitVector]).toEqual([5, 0x11n, 0x13n]);
  });

  it('keeps a private copy of the report bytes', () => {
    const input = gsgReport.slice();
    const r = parseSnpReportBytes(input);
    input[0x90] = input[0x90]! ^ 1;
    expect(r.measurement[0]).toBe(gsgReport[0x90]);
  });

  it('refuses unknown versions and reserved flag values', () => {
    for (const version of [0, 1, 6, 0x100]) {
      const bad = gsgReport.slice();
      new DataView(bad.buffer).setUint32(0, version, true);
      expectMalformed(() => parseSnpReportBytes(bad));
    }
    for (const flags of [2 << 2, 6 << 2, 1 << 5, 0x80000000]) {
      const bad = gsgReport.slice();
      new DataView(bad.buffer).setUint32(0x48, flags, true);
      expectMalformed(() => parseSnpReportBytes(bad));
    }
    const none = gsgReport.slice();
    none[0x48] = 7 << 2;
    expect(parseSnpReportBytes(none).signingKey).toBe('none');
  });

  it('refuses truncated and oversized raw reports', () => {
    expectMalformed(() => snpVerifier.parse(gsgReport.subarray(0, SNP_REPORT_SIZE - 1)));
    const longer = new Uint8Array(SNP_REPORT_SIZE + 1);
    longer.set(gsgReport);
    expectMalformed(() => snpVerifier.parse(longer));
    expectMalformed(() => snpVerifier.parse(new Uint8Array(0)));
    expectMalformed(() => snpVerifier.parse(new Uint8Array((1 << 20) + 1)));
  });
});

describe('SEV-SNP evidence shapes', () => {
  it('reads hex text, upper or lower case, with line breaks', () => {
    const hex = readTestdataText(`${VIRTEE}/report.hex`);
    const fromHex = snpVerifier.parse(utf8Encode(hex));
    expect(snpVerifier.parse(utf8Encode(`${hex.toLowerCase().replace(/(.{64})/g, '$1\n')}\n`)).bytes).toEqual(
      fromHex.bytes,
    );
    expect(snpVerifier.parse(utf8Encode(bytesToHex(gsgReport))).bytes).toEqual(gsgReport);
    expectMalformed(() => snpVerifier.parse(utf8Encode(`${hex}0`)));
  });

  it('cuts the SNP report out of an Azure HCL report', () => {
    expect(snpReportFromHclReport(hclReport)).toEqual(readTestdata(`${HCL}/report.bin`));
    expect(snpVerifier.parse(hclReport).bytes).toEqual(readTestdata(`${HCL}/report.bin`));
    // Hex text of an HCL report is accepted too.
    expect(snpReportBytes(utf8Encode(bytesToHex(hclReport)))).toEqual(readTestdata(`${HCL}/report.bin`));
  });

  it('refuses HCL reports that are short or carry a TDX report', () => {
    expectMalformed(() => snpReportFromHclReport(hclReport.subarray(0, 0x20 + SNP_REPORT_SIZE - 1)));
    expect(snpReportFromHclReport(hclReport.subarray(0, 0x20 + SNP_REPORT_SIZE))).toHaveLength(
      SNP_REPORT_SIZE,
    );
    const tdx = hclReport.slice();
    new DataView(tdx.buffer).setUint32(0x4c0 + 8, 4, true);
    expectMalformed(() => snpReportFromHclReport(tdx));
    expectMalformed(() => snpReportFromHclReport(gsgReport));
  });

  it("reads Trustee's az-snp-vtpm evidence JSON with a byte-array or base64url HCL report", () => {
    const evidence = readAzSnpVtpmEvidence(genoaEvidence);
    expect(evidence.report).toEqual(readTestdata(`${GENOA}/report.bin`));
    expect(evidence.vcek).toEqual(utf8Encode(readTestdataText(`${GENOA}/vcek.pem`)));
    expect(snpVerifier.parse(genoaEvidence).bytes).toEqual(evidence.report);

    const base64url = JSON.stringify({ hcl_report: bytesToBase64Url(evidence.hclReport), vcek: 'AAEC' });
    const alt = readAzSnpVtpmEvidence(utf8Encode(base64url));
    expect(alt.report).toEqual(evidence.report);
    expect(alt.vcek).toEqual(new Uint8Array([0, 1, 2]));
  });

  it('refuses JSON that is not az-snp-vtpm evidence', () => {
    for (const text of [
      '{}',
      '{"report": [1, 2, 300]}',
      '{"report": [], "hcl_report": ""}',
      '{"hcl_report": "***"}',
      '{"report": "AAAA"}',
      '{"report": [72, 67, 76, 65]',
      '[1, 2, 3]',
    ]) {
      expectMalformed(() => snpVerifier.parse(utf8Encode(text)));
    }
  });
});

describe('SEV-SNP parser fuzzing', () => {
  const hexText = utf8Encode(bytesToHex(gsgReport));

  it('answers random bytes with a report or a clean code', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), parsesOrRefusesCleanly), { numRuns: 3000 });
  });

  it('refuses every truncated or extended report with ATTESTATION_EVIDENCE_MALFORMED', () => {
    fc.assert(
      fc.property(fc.nat({ max: SNP_REPORT_SIZE }), fc.uint8Array({ maxLength: 64 }), (kept, tail) => {
        const input = concatBytes(gsgReport.subarray(0, kept), tail);
        if (input.length === SNP_REPORT_SIZE) return parsesOrRefusesCleanly(input);
        try {
          snpVerifier.parse(input);
          return false;
        } catch (error) {
          return isTresorError(error) && error.code === 'ATTESTATION_EVIDENCE_MALFORMED';
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('answers byte mutations of real reports, HCL reports and hex text with a report or a clean code', () => {
    const bases = [gsgReport, hclReport, hexText];
    fc.assert(
      fc.property(
        fc.constantFrom(...bases),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.option(fc.nat(), { nil: undefined }),
        (base, edits, cut) => {
          const input = base.slice(0, cut === undefined ? base.length : cut % (base.length + 1));
          for (const [at, value] of edits) if (input.length > 0) input[at % input.length] = value;
          return parsesOrRefusesCleanly(input);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('answers mangled evidence JSON with a clean code', () => {
    const text = new TextDecoder().decode(genoaEvidence);
    fc.assert(
      fc.property(fc.nat({ max: text.length }), fc.string({ maxLength: 8 }), (at, insert) =>
        parsesOrRefusesCleanly(utf8Encode(text.slice(0, at) + insert + text.slice(at + insert.length))),
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => parsesOrRefusesCleanly(utf8Encode(JSON.stringify(value)))),
      { numRuns: 1700 },
    );
  });
});
