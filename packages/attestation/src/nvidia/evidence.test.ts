import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTresorError } from '@tresor/protocol';
import { bytesToBase64, bytesToHex, concatBytes, hexToBytes } from '@tresor/crypto';
import { readTestdata } from '../../../../test/support/testdata.js';
import { parseGpuAttestationReport } from './attestation-report.js';
import { parseNvidiaEvidence } from './evidence.js';
import { nvidiaVerifier } from './verifier.js';

const HOPPER = 'attestation/nvidia/nvtrust-hopper-sample';
const PPCIE = 'attestation/nvidia/nvtrust-ppcie-8gpu';
const hexText = readTestdata(`${HOPPER}/attestation_report.hex`);
const raw = hexToBytes(new TextDecoder().decode(hexText).trim());
const listText = readTestdata(`${PPCIE}/gpu_evidence.json`);

/** Parses, or throws ATTESTATION_EVIDENCE_MALFORMED and nothing else. */
function parsesOrRefusesCleanly(bytes: Uint8Array): boolean {
  try {
    parseNvidiaEvidence(bytes);
    return true;
  } catch (error) {
    if (isTresorError(error) && error.code === 'ATTESTATION_EVIDENCE_MALFORMED') return true;
    throw error;
  }
}

function expectMalformed(bytes: Uint8Array, message: RegExp): void {
  expect(() => parseNvidiaEvidence(bytes)).toThrow(
    expect.objectContaining({ code: 'ATTESTATION_EVIDENCE_MALFORMED' }),
  );
  expect(() => parseNvidiaEvidence(bytes)).toThrow(message);
}

/** Little-endian u16. */
function u16(n: number): Uint8Array {
  return new Uint8Array([n & 0xff, n >> 8]);
}

describe('GPU attestation report parser on the real vectors', () => {
  it('parses the nvtrust Hopper sample: request, 64 DMTF blocks, opaque data, signature', () => {
    const report = parseGpuAttestationReport(raw);
    expect(report.request).toMatchObject({ version: 0x11, code: 0xe0, param1: 1, param2: 0xff, slotId: 0 });
    expect(bytesToHex(report.request.nonce)).toBe(
      '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb',
    );
    expect(report.response).toMatchObject({
      version: 0x11,
      code: 0x60,
      numberOfBlocks: 64,
      measurementRecordLength: 3520,
    });
    expect(report.response.blocks.map((b) => b.index)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    expect(
      report.response.blocks.every((b) => b.dmtfType === 1 && b.specification === 1 && b.value.length === 48),
    ).toBe(true);
    expect(report.response.opaqueData).toMatchObject({
      driverVersion: '550.90.07',
      vbiosVersion: '96.00.9f.00.01',
      chipSku: '882',
      chipSkuMod: '0',
      project: '1010',
      projectSku: '0200',
      boardId: 'b1030000',
    });
    expect(report.response.signature).toHaveLength(96);
    // The signed message is everything before the signature; nothing trails it in this capture.
    expect(report.signedBytes).toEqual(raw.subarray(0, raw.length - 96));
    expect(report.trailingBytes).toBe(0);
  });

  it('reads hex text with surrounding and embedded whitespace, raw bytes, and the JSON list alike', () => {
    const wrapped = new TextEncoder().encode(`\n  ${bytesToHex(raw).replace(/(.{64})/g, '$1\n')}\r\n`);
    for (const input of [hexText, raw, wrapped]) {
      const parsed = parseNvidiaEvidence(input);
      expect(parsed.kind).toBe('report');
      if (parsed.kind === 'report') expect(parsed.report.bytes).toEqual(raw);
    }
    const list = parseNvidiaEvidence(listText);
    expect(list.kind).toBe('list');
    if (list.kind !== 'list') return;
    expect(list.gpus).toHaveLength(8);
    for (const gpu of list.gpus) {
      expect(gpu).toMatchObject({
        nonce: '4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e',
        arch: 'HOPPER',
        driverVersion: '590.12',
        vbiosVersion: '96.00.A5.00.01',
      });
      expect(gpu.certChain).toHaveLength(5);
      expect(gpu.report.response.opaqueData.driverVersion).toBe('590.12');
    }
  });

  it('refuses every truncation of the real report, and never reads past a length field', () => {
    for (let length = 0; length < raw.length; length++) {
      expect(() => parseGpuAttestationReport(raw.subarray(0, length))).toThrow(
        expect.objectContaining({ code: 'ATTESTATION_EVIDENCE_MALFORMED' }),
      );
    }
  });
});

describe('GPU attestation report parser refuses malformed structure', () => {
  const report = parseGpuAttestationReport(raw);
  const at = (view: Uint8Array): number => view.byteOffset - report.bytes.byteOffset;
  const patch = (offset: number, ...bytes: number[]): Uint8Array => {
    const out = raw.slice();
    out.set(bytes, offset);
    return out;
  };
  const opaqueStart = at(report.response.responderNonce) + 32 + 2;
  const recordStart = 37 + 8;

  it('names the SPDM field that is wrong', () => {
    expectMalformed(patch(0, 0x12), /only SPDM 1\.1/);
    expectMalformed(patch(1, 0xe1), /GET_MEASUREMENTS/);
    expectMalformed(patch(2, 0x00), /unsigned GET_MEASUREMENTS/);
    expectMalformed(patch(37, 0x10), /response SPDM version differs/);
    expectMalformed(patch(38, 0x7f), /not MEASUREMENTS/);
    expectMalformed(patch(recordStart + 1, 0x02), /not in the DMTF measurement layout/);
    // Block 2's index rewritten to 1: two blocks claim the same index.
    expectMalformed(patch(recordStart + 55, 0x01), /repeats measurement index 1/);
    // A value size that does not fill its block.
    expectMalformed(patch(recordStart + 5, 47, 0), /does not fill its block/);
    // NumberOfBlocks one short: the record has a block left over.
    expectMalformed(patch(37 + 4, 63), /bytes after its 63 blocks/);
    // A record length beyond the input is refused before anything is sliced.
    expectMalformed(patch(37 + 5, 0xff, 0xff, 0xff), /truncated: MeasurementRecord needs 16777215 bytes/);
    expectMalformed(patch(opaqueStart - 2, 0xff, 0xff), /truncated/);
  });

  it('refuses opaque data that repeats a field, has a bad VBIOS length, non-ASCII text or a cut entry', () => {
    const opaqueLength = report.response.opaqueDataLength;
    const replaceOpaque = (opaque: Uint8Array): Uint8Array =>
      concatBytes(
        raw.subarray(0, opaqueStart - 2),
        u16(opaque.length),
        opaque,
        raw.subarray(opaqueStart + opaqueLength),
      );
    const withOpaque = (extra: Uint8Array): Uint8Array =>
      replaceOpaque(concatBytes(raw.subarray(opaqueStart, opaqueStart + opaqueLength), extra));
    expect(parseGpuAttestationReport(withOpaque(new Uint8Array())).bytes).toHaveLength(raw.length);
    expectMalformed(withOpaque(concatBytes(u16(14), u16(1), new Uint8Array([7]))), /repeats field type 14/);
    expectMalformed(withOpaque(concatBytes(u16(99), u16(4))), /truncated: opaque data entry 99/);
    expectMalformed(withOpaque(new Uint8Array([1, 0, 0])), /truncated: opaque data entry length/);
    const driver = at(report.response.opaqueData.fields.get(3)!);
    expectMalformed(patch(driver, 0xc3), /driver_version is not printable ASCII/);
    expectMalformed(
      replaceOpaque(concatBytes(u16(6), u16(7), new Uint8Array(7))),
      /VBIOS version field has 7 bytes/,
    );
    // An unknown field type is signed data from a newer driver: kept, not refused.
    const unknown = parseGpuAttestationReport(
      withOpaque(concatBytes(u16(99), u16(2), new Uint8Array([1, 2]))),
    );
    expect(unknown.response.opaqueData.fields.get(99)).toEqual(new Uint8Array([1, 2]));
  });

  it('refuses JSON lists that are not nvtrust GPU evidence, naming the entry', () => {
    const entries = JSON.parse(new TextDecoder().decode(listText)) as Record<string, string>[];
    const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
    expectMalformed(encode([]), /JSON list/);
    expectMalformed(new TextEncoder().encode('[{"evidence": '), /not UTF-8 JSON/);
    expectMalformed(encode([{ ...entries[0], evidence: '@@@' }]), /GPU 0 "evidence" is not base64/);
    expectMalformed(encode([entries[0], { ...entries[1], nonce: 'xyz' }]), /64 hex digits at "1\.nonce"/);
    expectMalformed(
      encode([{ ...entries[0], certificate: bytesToBase64(new Uint8Array([1, 2])) }]),
      /GPU 0:/,
    );
    expectMalformed(
      encode([{ ...entries[0], evidence: bytesToBase64(raw.subarray(0, 100)) }]),
      /GPU 0: GPU evidence is truncated/,
    );
    expectMalformed(encode(Array.from({ length: 65 }, () => entries[0])), /JSON list/);
    expectMalformed(new TextEncoder().encode('abc'), /odd number of digits/);
    expectMalformed(new Uint8Array(), /truncated/);
  });
});

describe('GPU evidence parser fuzzing (fast-check, 11,000+ runs)', () => {
  it('random bytes: parsed or ATTESTATION_EVIDENCE_MALFORMED, nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), parsesOrRefusesCleanly), { numRuns: 3000 });
  });

  it('random text around the hex and JSON detectors', () => {
    const text = fc.oneof(
      fc.stringMatching(/^[0-9a-fA-F \n]{0,400}$/),
      fc.json({ maxDepth: 3 }).map((j) => `[${j}]`),
      fc
        .array(
          fc.record(
            {
              evidence: fc.base64String({ maxLength: 200 }),
              certificate: fc.base64String({ maxLength: 200 }),
              nonce: fc.stringMatching(/^[0-9a-f]{64}$/),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        )
        .map((list) => JSON.stringify(list)),
    );
    fc.assert(
      fc.property(text, (t) => parsesOrRefusesCleanly(new TextEncoder().encode(t))),
      { numRuns: 2000 },
    );
  });

  it('the real report with bits flipped, bytes changed, cut or extended: never a crash', () => {
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat({ max: raw.length - 1 }),
        bit: fc.nat({ max: 7 }),
      }),
      fc.record({
        kind: fc.constant('set' as const),
        at: fc.nat({ max: raw.length - 1 }),
        value: fc.nat({ max: 255 }),
      }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat({ max: raw.length }) }),
      fc.record({
        kind: fc.constant('append' as const),
        extra: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        let bytes: Uint8Array = raw.slice();
        for (const m of mutations) {
          if (m.kind === 'flip') bytes[m.at % bytes.length]! ^= 1 << m.bit;
          else if (m.kind === 'set') bytes[m.at % bytes.length] = m.value;
          else if (m.kind === 'cut') bytes = bytes.slice(0, m.at);
          else bytes = concatBytes(bytes, m.extra);
          if (bytes.length === 0) break;
        }
        return parsesOrRefusesCleanly(bytes);
      }),
      { numRuns: 4000 },
    );
  });

  it('structured SPDM messages with arbitrary counts and lengths', () => {
    const block = fc.record({
      index: fc.nat({ max: 255 }),
      spec: fc.constantFrom(1, 1, 1, 2),
      type: fc.nat({ max: 255 }),
      value: fc.uint8Array({ maxLength: 60 }),
      sizeSkew: fc.constantFrom(0, 0, 0, 1, -1),
    });
    const message = fc.record({
      blocks: fc.array(block, { maxLength: 6 }),
      countSkew: fc.constantFrom(0, 0, 1, -1),
      recordSkew: fc.constantFrom(0, 0, 3, -3),
      opaque: fc.uint8Array({ maxLength: 40 }),
      opaqueSkew: fc.constantFrom(0, 0, 2, -2),
      tail: fc.uint8Array({ maxLength: 120 }),
    });
    fc.assert(
      fc.property(message, (m) => {
        const record = concatBytes(
          ...m.blocks.map((b) =>
            concatBytes(
              new Uint8Array([b.index, b.spec]),
              u16(Math.max(0, b.value.length + 3 + b.sizeSkew)),
              new Uint8Array([b.type]),
              u16(b.value.length),
              b.value,
            ),
          ),
        );
        const recordLength = Math.max(0, record.length + m.recordSkew);
        const bytes = concatBytes(
          raw.subarray(0, 37),
          new Uint8Array([0x11, 0x60, 0, 0, (m.blocks.length + m.countSkew) & 0xff]),
          new Uint8Array([recordLength & 0xff, (recordLength >> 8) & 0xff, recordLength >> 16]),
          record,
          new Uint8Array(32),
          u16(Math.max(0, m.opaque.length + m.opaqueSkew)),
          m.opaque,
          m.tail,
        );
        return parsesOrRefusesCleanly(bytes);
      }),
      { numRuns: 2500 },
    );
  });

  it('any changed byte that still parses is refused by the signature check, never thrown', async () => {
    const certChain = readTestdata(`${HOPPER}/cert_chain.pem`);
    const now = new Date('2025-06-01T00:00:00Z');
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: raw.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (at, mask) => {
          const bytes = raw.slice();
          bytes[at]! ^= mask;
          let evidence;
          try {
            evidence = nvidiaVerifier.parse(bytes);
          } catch (error) {
            return isTresorError(error) && error.code === 'ATTESTATION_EVIDENCE_MALFORMED';
          }
          const result = await nvidiaVerifier.verify(evidence, { certChain }, { now });
          return !result.valid && result.error === 'ATTESTATION_SIGNATURE_INVALID';
        },
      ),
      { numRuns: 60 },
    );
  });
});
