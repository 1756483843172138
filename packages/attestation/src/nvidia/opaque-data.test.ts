import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTresorError } from '@tresor/protocol';
import { concatBytes } from '@tresor/crypto';
import { opaqueFieldName, parseGpuOpaqueData } from './opaque-data.js';

const entry = (type: number, value: Uint8Array): Uint8Array =>
  concatBytes(new Uint8Array([type & 0xff, type >> 8, value.length & 0xff, value.length >> 8]), value);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('NVIDIA opaque data', () => {
  it('decodes the fields the claims name, as nvtrust prints them', () => {
    const opaque = parseGpuOpaqueData(
      concatBytes(
        entry(3, text('550.90.07\0')),
        entry(6, new Uint8Array([0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0])),
        entry(14, new Uint8Array([0xb1, 0x03, 0, 0])),
        entry(15, text('882\0\0\0\0\0\0')),
        entry(16, text('0\0\0\0\0')),
        entry(17, text('1010\0')),
        entry(18, text('0200\0')),
        entry(20, new Uint8Array(48).fill(0xf5)),
      ),
    );
    expect(opaque).toMatchObject({
      driverVersion: '550.90.07',
      vbiosVersion: '96.00.9f.00.01',
      boardId: 'b1030000',
      chipSku: '882',
      chipSkuMod: '0',
      project: '1010',
      projectSku: '0200',
      fwid: new Uint8Array(48).fill(0xf5),
    });
    expect([...opaque.fields.keys()]).toEqual([3, 6, 14, 15, 16, 17, 18, 20]);
  });

  it('leaves absent fields absent and names every type', () => {
    const empty = parseGpuOpaqueData(new Uint8Array());
    expect(empty).toEqual({ fields: new Map() });
    expect(opaqueFieldName(12)).toBe('msrscnt');
    expect(opaqueFieldName(36)).toBe('feature_flag');
    expect(opaqueFieldName(4096)).toBe('type_4096');
  });

  it('parses or refuses arbitrary TLV lists with ATTESTATION_EVIDENCE_MALFORMED only (fast-check)', () => {
    const tlv = fc.record({
      type: fc.constantFrom(3, 6, 14, 15, 17, 20, 99, 0xffff),
      value: fc.uint8Array({ maxLength: 12 }),
      lengthSkew: fc.constantFrom(0, 0, 0, 1, -1, 300),
    });
    fc.assert(
      fc.property(fc.array(tlv, { maxLength: 6 }), fc.uint8Array({ maxLength: 3 }), (entries, tail) => {
        const bytes = concatBytes(
          ...entries.map((e) => {
            const length = Math.max(0, e.value.length + e.lengthSkew);
            return concatBytes(
              new Uint8Array([e.type & 0xff, e.type >> 8, length & 0xff, length >> 8]),
              e.value,
            );
          }),
          tail,
        );
        try {
          parseGpuOpaqueData(bytes);
          return true;
        } catch (error) {
          return isTresorError(error) && error.code === 'ATTESTATION_EVIDENCE_MALFORMED';
        }
      }),
      { numRuns: 2000 },
    );
  });
});
