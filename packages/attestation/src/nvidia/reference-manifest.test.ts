import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isTresorError } from '@tresor/protocol';
import type { MeasurementBlock } from './attestation-report.js';
import { compareWithReferenceManifest, parseNvidiaReferenceManifest } from './reference-manifest.js';

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const block = (index: number, byte: number): MeasurementBlock => ({
  index,
  specification: 1,
  dmtfType: 1,
  value: new Uint8Array(48).fill(byte),
});

describe('NVIDIA reference manifest', () => {
  it('parses per-index allowed values, normalising hex to lowercase', () => {
    const manifest = parseNvidiaReferenceManifest(
      encode({ description: 'H100 550.90.07', measurements: { '2': ['AB'.repeat(48)], '0': ['00'] } }),
    );
    expect(manifest).toEqual({
      description: 'H100 550.90.07',
      measurements: { '2': ['ab'.repeat(48)], '0': ['00'] },
    });
    expect(parseNvidiaReferenceManifest(encode({ measurements: {} }))).toEqual({ measurements: {} });
  });

  it('refuses malformed manifests with INPUT_MALFORMED naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [{}, /"measurements"/],
      [{ measurements: { '256': ['00'] } }, /at "measurements.256": keys must be measurement indices 0-255/],
      [{ measurements: { '01': ['00'] } }, /at "measurements.01": keys must be measurement indices 0-255/],
      [{ measurements: { '2': [] } }, /"measurements.2"/],
      [{ measurements: { '2': ['abc'] } }, /hex bytes/],
      [{ measurements: { '2': ['00'] }, extra: true }, /invalid/],
    ];
    for (const [json, message] of cases) {
      expect(() => parseNvidiaReferenceManifest(encode(json))).toThrow(
        expect.objectContaining({ code: 'INPUT_MALFORMED' }),
      );
      expect(() => parseNvidiaReferenceManifest(encode(json))).toThrow(message);
    }
    expect(() => parseNvidiaReferenceManifest(new Uint8Array([0xff]))).toThrow(
      expect.objectContaining({ code: 'INPUT_MALFORMED' }),
    );
  });

  it('drops a "__proto__" key instead of polluting prototypes (the empty manifest then refuses all)', () => {
    const manifest = parseNvidiaReferenceManifest(
      new TextEncoder().encode('{"measurements": {"__proto__": ["00"]}}'),
    );
    expect(Object.keys(manifest.measurements)).toEqual([]);
    expect(Object.getPrototypeOf(manifest.measurements)).toBe(Object.prototype);
    expect(compareWithReferenceManifest([block(1, 1)], manifest)).toMatchObject({
      code: 'GPU_MEASUREMENT_MISMATCH',
    });
  });

  it('parses or refuses arbitrary JSON cleanly (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parseNvidiaReferenceManifest(encode(value));
        } catch (error) {
          return isTresorError(error) && error.code === 'INPUT_MALFORMED';
        }
        return true;
      }),
      { numRuns: 1000 },
    );
  });

  it('passes only when listed indices match and every measured index is listed', () => {
    const blocks = [block(1, 0xaa), block(2, 0xbb), block(3, 0)];
    const allowed = { '1': ['aa'.repeat(48)], '2': ['cc'.repeat(48), 'bb'.repeat(48)] };
    expect(compareWithReferenceManifest(blocks, { measurements: allowed })).toEqual({ ok: true });
    // An all-zero block is an unused index: it need not be listed, but if listed it must match.
    expect(
      compareWithReferenceManifest(blocks, { measurements: { ...allowed, '3': ['00'.repeat(48)] } }),
    ).toEqual({
      ok: true,
    });
    const refused = compareWithReferenceManifest(blocks, {
      measurements: { '1': ['ab'.repeat(48)], '9': ['00'] },
    });
    expect(refused).toMatchObject({ ok: false, code: 'GPU_MEASUREMENT_MISMATCH' });
    expect(refused.ok ? '' : refused.detail).toBe(
      `index 1 is ${'aa'.repeat(48)}, not an allowed value; index 9 is missing from the evidence; ` +
        'index 2 is measured but not in the manifest',
    );
  });

  it('names at most five mismatches in the detail', () => {
    const blocks = Array.from({ length: 8 }, (_, i) => block(i + 1, 1));
    const result = compareWithReferenceManifest(blocks, { measurements: {} });
    expect(result.ok ? '' : result.detail).toMatch(
      /index 5 is measured but not in the manifest; and 3 more$/,
    );
  });
});
