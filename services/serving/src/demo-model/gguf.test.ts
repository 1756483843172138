import { TresorError } from '@tresor/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeGguf,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  GgmlType,
  gguf,
  GgufType,
  parseGguf,
  readGgufTensor,
  type GgufValue,
} from './gguf.js';

const small = () =>
  encodeGguf({
    metadata: new Map<string, GgufValue>([
      ['general.architecture', gguf.string('llama')],
      ['n', gguf.u32(7)],
      ['list', gguf.array(GgufType.INT32, [1, -2, 3])],
    ]),
    tensors: [
      { name: 'a', dims: [3], type: GgmlType.F32, data: new Float32Array([1, 2, 3]) },
      { name: 'b', dims: [2, 2], type: GgmlType.F16, data: new Float32Array([0.5, -1, 2, 65504]) },
    ],
  });

function refusal(bytes: Uint8Array): string {
  try {
    parseGguf(bytes);
  } catch (e) {
    if (e instanceof TresorError) return e.code;
    throw e;
  }
  return 'accepted';
}

describe('GGUF writer and reader', () => {
  it('writes the v3 header, metadata, tensor infos and aligned data', () => {
    const bytes = small();
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('GGUF');
    const parsed = parseGguf(bytes);
    expect(parsed.version).toBe(3);
    expect(parsed.alignment).toBe(32);
    expect(parsed.dataOffset % 32).toBe(0);
    expect(parsed.metadata.get('n')).toEqual({ type: GgufType.UINT32, value: 7 });
    expect(parsed.metadata.get('list')).toEqual({
      type: GgufType.ARRAY,
      itemType: GgufType.INT32,
      items: [1, -2, 3],
    });
    expect(parsed.tensors.map((t) => [t.name, t.dims, t.type, t.offset])).toEqual([
      ['a', [3], GgmlType.F32, 0n],
      ['b', [2, 2], GgmlType.F16, 32n],
    ]);
    expect([...readGgufTensor(bytes, parsed, 'a')]).toEqual([1, 2, 3]);
    expect([...readGgufTensor(bytes, parsed, 'b')]).toEqual([0.5, -1, 2, 65504]);
    expect(bytes.length % 32).toBe(0);
  });

  it('refuses every truncation with MODEL_LOAD_FAILED', () => {
    const bytes = small();
    const parsed = parseGguf(bytes);
    // Any cut before the end of the last tensor's data must be refused.
    const lastEnd = parsed.dataOffset + 32 + 8;
    for (let n = 0; n < lastEnd; n++)
      expect(refusal(bytes.subarray(0, n)), `cut at ${n}`).toBe('MODEL_LOAD_FAILED');
  });

  it('refuses a bad magic, an unknown version and an unknown value type', () => {
    const bad = small();
    bad[0] = 0x47 ^ 1;
    expect(refusal(bad)).toBe('MODEL_LOAD_FAILED');
    const v9 = small();
    new DataView(v9.buffer).setUint32(4, 9, true);
    expect(refusal(v9)).toBe('MODEL_LOAD_FAILED');
    const badType = small();
    // First key "general.architecture": 24-byte header + 8-byte length + 20 bytes of key → type at 52.
    new DataView(badType.buffer).setUint32(52, 99, true);
    expect(refusal(badType)).toBe('MODEL_LOAD_FAILED');
  });

  it('refuses misaligned, overlapping and out-of-file tensors, and huge counts', () => {
    const make = (offsetB: bigint, dimsA = 3) => {
      const bytes = small();
      // Patch tensor b's offset (the last u64 before the data padding) and tensor a's dim.
      const view = new DataView(bytes.buffer);
      const text = new TextDecoder('latin1').decode(bytes);
      const bInfo = text.lastIndexOf('\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0000b') + 9;
      view.setBigUint64(bInfo + 4 + 16 + 4, offsetB, true);
      const aInfo = text.lastIndexOf('\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0000a') + 9;
      view.setBigUint64(aInfo + 4, BigInt(dimsA), true);
      return bytes;
    };
    expect(refusal(make(32n))).toBe('accepted');
    expect(refusal(make(33n))).toBe('MODEL_LOAD_FAILED');
    expect(refusal(make(1024n))).toBe('MODEL_LOAD_FAILED');
    expect(refusal(make(32n, 9))).toBe('MODEL_LOAD_FAILED'); // a now runs into b
    const huge = small();
    new DataView(huge.buffer).setBigUint64(16, 1n << 60n, true);
    expect(refusal(huge)).toBe('MODEL_LOAD_FAILED');
  });

  it('never throws anything but MODEL_LOAD_FAILED on arbitrary or mutated bytes', () => {
    const base = small();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(['accepted', 'MODEL_LOAD_FAILED']).toContain(refusal(bytes));
      }),
    );
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const copy = base.slice();
        copy[at] = value;
        expect(['accepted', 'MODEL_LOAD_FAILED']).toContain(refusal(copy));
      }),
    );
  });

  it('round-trips arbitrary metadata and F32 tensors', () => {
    const scalar = fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }).map((v) => gguf.u32(v)),
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((v) => gguf.i32(v)),
      fc.float({ noNaN: true }).map((v) => gguf.f32(v)),
      fc.boolean().map((v) => gguf.bool(v)),
      fc.string().map((v) => gguf.string(v)),
      fc
        .bigInt({ min: 0n, max: (1n << 64n) - 1n })
        .map((v): GgufValue => ({ type: GgufType.UINT64, value: v })),
      fc.array(fc.string(), { maxLength: 5 }).map((v) => gguf.array(GgufType.STRING, v)),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.string({ minLength: 1 }), scalar), {
          selector: (x) => x[0],
          maxLength: 8,
        }),
        fc.array(fc.float32Array({ minLength: 1, maxLength: 20, noNaN: true }), { maxLength: 4 }),
        (entries, datas) => {
          const tensors = datas.map((data, i) => ({
            name: `t${i}`,
            dims: [data.length],
            type: GgmlType.F32,
            data,
          }));
          const bytes = encodeGguf({ metadata: new Map(entries), tensors });
          const parsed = parseGguf(bytes);
          expect([...parsed.metadata]).toEqual(entries);
          for (const t of tensors) expect(readGgufTensor(bytes, parsed, t.name)).toEqual(t.data);
        },
      ),
    );
  });

  it('converts to IEEE binary16 and back within half-precision error', () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(1e6)).toBe(0x7c00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16Bits(Number.NaN) & 0x7c00).toBe(0x7c00);
    fc.assert(
      fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
        const back = float16BitsToFloat32(float32ToFloat16Bits(x));
        expect(Math.abs(back - x)).toBeLessThanOrEqual(Math.max(Math.abs(x) * 2 ** -11, 2 ** -25));
      }),
    );
  });
});
