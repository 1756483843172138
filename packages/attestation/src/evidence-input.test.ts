import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { bytesToHex, utf8Decode, utf8Encode } from '@tresor/crypto';
import { readTestdata, readTestdataJson, vectorDirs } from '../../../test/support/testdata.js';
import { testdataVector } from './conformance/testdata-vectors.js';
import { decodeHexText, evidenceBinary, isHexText, recogniseTee, resolveTee } from './evidence-input.js';
import { createSampleEvidence, SampleSigningKey } from './sample/index.js';
import { verifyAttestation } from './verify-attestation.js';

const allVectors = (['snp', 'tdx', 'nvidia'] as const).flatMap((tee) =>
  vectorDirs(tee).map((dir) =>
    testdataVector(readTestdataJson(`${dir}/expected.json`), (f) => readTestdata(`${dir}/${f}`)),
  ),
);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
  return undefined;
}

describe('evidence recognition', () => {
  it('recognises the evidence of every vector, raw and as hex text', () => {
    for (const v of allVectors) {
      const evidence = v.files[v.evidenceRole]!;
      expect({ id: v.id, tee: recogniseTee(evidence) }).toEqual({ id: v.id, tee: v.tee });
      const binary = evidenceBinary(evidence);
      if (binary[0] !== 0x5b && binary[0] !== 0x7b) {
        expect({ id: v.id, hex: recogniseTee(utf8Encode(`${bytesToHex(binary)}\n`)) }).toEqual({
          id: v.id,
          hex: v.tee,
        });
        expect({ id: v.id, raw: recogniseTee(binary) }).toEqual({ id: v.id, raw: v.tee });
      }
    }
  });

  it("recognises the other published shapes: Azure HCL report, Trustee's az-snp-vtpm JSON, sample evidence", () => {
    expect(recogniseTee(readTestdata('attestation/snp/azure-milan-hcl-v2/hcl-report.bin'))).toBe('snp');
    expect(recogniseTee(readTestdata('attestation/snp/azure-genoa-v3/evidence.json'))).toBe('snp');
    const key = SampleSigningKey.generate(() => new Uint8Array(32).fill(1));
    expect(
      recogniseTee(createSampleEvidence({ reportData: new Uint8Array(0), svn: 0, signingKey: key })),
    ).toBe('sample');
    expect(recogniseTee(utf8Encode(' {"svn":"1","report_data":""}'))).toBe('sample');
  });

  it('recognises nothing in empty, unknown or unbalanced input, and resolveTee refuses it', () => {
    for (const text of ['', '   ', '{}', '{"a":1}', 'null', '"x"', '{', 'abc', '0102030', 'hello world']) {
      expect({ text, tee: recogniseTee(utf8Encode(text)) }).toEqual({ text, tee: null });
      expect(codeOf(() => resolveTee(utf8Encode(text)))).toBe('ATTESTATION_TEE_UNSUPPORTED');
    }
    expect(resolveTee(utf8Encode('abc'), 'tdx')).toBe('tdx');
    expect(recogniseTee(new Uint8Array((4 << 20) + 1))).toBeNull();
  });

  it('decodes hex text with whitespace in either case', () => {
    expect(isHexText(utf8Encode('0A0b\n 0c\t'))).toBe(true);
    expect(isHexText(utf8Encode('0A0b0'))).toBe(false);
    expect(isHexText(utf8Encode(''))).toBe(false);
    expect(bytesToHex(decodeHexText(utf8Encode('0A0b\n 0c\t')))).toBe('0a0b0c');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, upper) => {
        const hex = bytesToHex(bytes).replace(/(..)/g, '$1 ');
        const text = utf8Encode(upper ? hex.toUpperCase() : hex);
        return bytes.length === 0 || bytesToHex(evidenceBinary(text)) === bytesToHex(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1300 }), (bytes) => {
        const tee = recogniseTee(bytes);
        return tee === null || ['snp', 'tdx', 'nvidia', 'sample'].includes(tee);
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        recogniseTee(utf8Encode(JSON.stringify(value)));
        return true;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('verifyAttestation', () => {
  const genoa = 'attestation/snp/azure-genoa-v3';
  const at = new Date('2025-06-01T00:00:00Z');

  it("verifies Trustee's az-snp-vtpm JSON with the VCEK it carries", async () => {
    const { tee, result } = await verifyAttestation({
      files: { evidence: readTestdata(`${genoa}/evidence.json`) },
      now: at,
    });
    expect(tee).toBe('snp');
    expect(result.valid).toBe(true);
  });

  it('refuses missing, doubled and misplaced files with USAGE_INVALID', async () => {
    const report = readTestdata(`${genoa}/report.bin`);
    const vcek = readTestdata(`${genoa}/vcek.pem`);
    const quote = readTestdata('attestation/tdx/azure-v4/quote.bin');
    const bad = [
      {},
      { signer_cert: vcek },
      { report, quote },
      { report },
      { report, signer_cert: vcek, collateral: quote },
      { quote, signer_cert: vcek },
    ];
    for (const files of bad) {
      await expect(verifyAttestation({ files, now: at })).rejects.toMatchObject({ code: 'USAGE_INVALID' });
    }
    await expect(verifyAttestation({ files: { quote }, tee: 'snp', now: at })).rejects.toMatchObject({
      code: 'USAGE_INVALID',
    });
    // The role names the TEE: a TDX quote passed as --report is a malformed SEV-SNP report.
    await expect(
      verifyAttestation({ files: { report: quote, signer_cert: vcek }, now: at }),
    ).rejects.toMatchObject({
      code: 'ATTESTATION_EVIDENCE_MALFORMED',
    });
    await expect(
      verifyAttestation({ files: { evidence: utf8Encode('nonsense') }, now: at }),
    ).rejects.toMatchObject({
      code: 'ATTESTATION_TEE_UNSUPPORTED',
    });
    await expect(
      verifyAttestation({ files: { evidence: new Uint8Array((4 << 20) + 1) }, now: at }),
    ).rejects.toMatchObject({ code: 'ATTESTATION_EVIDENCE_MALFORMED' });
  });

  it('takes the named TEE over recognition, and reports what the named verifier cannot parse', async () => {
    const quote = readTestdata('attestation/tdx/azure-v4/quote.bin');
    await expect(
      verifyAttestation({ files: { evidence: quote }, tee: 'sample', now: at }),
    ).rejects.toMatchObject({
      code: 'ATTESTATION_EVIDENCE_MALFORMED',
    });
    const hexQuote = utf8Encode(bytesToHex(quote));
    const { tee, result } = await verifyAttestation({ files: { quote: hexQuote }, now: at });
    expect({ tee, valid: result.valid }).toEqual({ tee: 'tdx', valid: true });
    expect(utf8Decode(hexQuote).length).toBe(quote.length * 2);
  });

  it('verifies sample evidence with the key file, and unsigned sample evidence only when allowed', async () => {
    const key = SampleSigningKey.generate(() => new Uint8Array(32).fill(5));
    const evidence = createSampleEvidence({ reportData: new Uint8Array(64), svn: 1, signingKey: key });
    const keyFile = utf8Encode(JSON.stringify(key.verifyKey.toJwk()));
    expect(
      (await verifyAttestation({ files: { evidence, sample_key: keyFile }, now: at })).result.valid,
    ).toBe(true);
    const unsigned = utf8Encode('{"svn":"1","report_data":"dGVzdA=="}');
    expect((await verifyAttestation({ files: { evidence: unsigned }, now: at })).result.valid).toBe(false);
    const accepted = await verifyAttestation({
      files: { evidence: unsigned },
      now: at,
      acceptUnsignedSample: true,
    });
    expect(accepted.result.valid).toBe(true);
    await expect(
      verifyAttestation({ files: { evidence, sample_key: utf8Encode('not a key') }, now: at }),
    ).rejects.toMatchObject({ code: 'INPUT_MALFORMED' });
  });
});
